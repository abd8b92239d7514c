#!/usr/bin/env python3
"""flamegraph.pl fidelity of kiln's SVG in a real browser (headless
Chromium over the DevTools protocol, cdp.py): perf annotations stripped from
what is shown and searched, labels fitted by measuring the text after a zoom,
a long name's details line cut in the middle with its numbers kept, the
search share of a zoomed frame, frames left out by the size budget still
searched, and a bad regex leaving Search ready to prompt again.
usage: svg_check.py ANNOTATED.svg WIDE.svg LONG.svg PRUNED.svg"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Cdp, Ws, click_at, report, start_browser, stop_browser, wait_for  # noqa: E402


def load(cdp, path):
    cdp.call("Page.navigate", url="file://" + os.path.abspath(path))
    return wait_for(cdp, "typeof kiln_frames !== 'undefined' && kiln_frames.length > 0")


def frame(name):
    return "kiln_frames.filter(function (f) { return f.name === %s; })[0]" % json.dumps(name)


def click_frame(cdp, name):
    x, y = cdp.js("(function () { var b = (%s).r.getBoundingClientRect(); return [b.left + 2, b.top + b.height / 2]; })()" % frame(name))
    click_at(cdp, x, y)


def main():
    annotated, wide, long_svg, pruned = sys.argv[1:5]
    proc, profile, ws = start_browser("about:blank")
    try:
        cdp = Cdp(Ws(ws))
        cdp.call("Page.enable")
        cdp.call("Runtime.enable")
        load(cdp, annotated)
        names = cdp.js("kiln_frames.map(function (f) { return f.name; })")
        report("svg_annotation_stripped", "tcp_v4_rcv" in names and not any("_[" in n for n in names), str(names))
        cdp.js("kiln_search('^tcp_v4_rcv$')")
        m = cdp.js("document.getElementById('matched').textContent")
        report("svg_annotation_search", m == "Matched: 25.0%", m)
        # Zoomed: the share is of the zoomed frame.
        click_frame(cdp, "net_rx")
        m = cdp.js("document.getElementById('matched').textContent")
        report("svg_search_share_of_zoom", m == "Matched: 50.0%", m)
        # A bad regex: a message, and the next Search click prompts.
        cdp.js("kiln_search('tcp(')")
        m = cdp.js("document.getElementById('matched').textContent")
        report("svg_bad_regex_message", m.startswith("Bad regex"), m)
        sid = cdp.send("Runtime.evaluate", expression="document.getElementById('search').dispatchEvent(new MouseEvent('click'))")
        try:
            cdp.event("Page.javascriptDialogOpening", timeout=5)
            cdp.call("Page.handleJavaScriptDialog", accept=False)
            report("svg_bad_regex_then_prompt", True)
        except RuntimeError as e:
            report("svg_bad_regex_then_prompt", False, str(e))
        cdp.wait(sid)

        # Labels after a zoom fit their frames by measured width.
        load(cdp, wide)
        click_frame(cdp, "mid")
        over = cdp.js("""kiln_frames.filter(function (f) { return !f.g.classList.contains('hide') && f.t.textContent; })
            .filter(function (f) { return f.t.getComputedTextLength() > parseFloat(f.r.getAttribute('width')); })
            .map(function (f) { return [f.name.substring(0, 20), f.t.getComputedTextLength(), f.r.getAttribute('width')]; })""")
        shown = cdp.js("kiln_frames.filter(function (f) { return !f.g.classList.contains('hide') && f.t.textContent.length > 2; }).length")
        report("svg_labels_measured", shown > 0 and not over, "%d labels, overflowing %s" % (shown, over[:3]))

        # A 1,500-character name: the details line keeps its numbers.
        load(cdp, long_svg)
        cdp.js("(function () { var f = %s; f.g.dispatchEvent(new MouseEvent('mouseover')); })()" % "kiln_frames.filter(function (f) { return f.name.length > 1000; })[0]")
        d = cdp.js("[document.getElementById('details').textContent, document.getElementById('details').getComputedTextLength(), kiln_cfg.width]")
        report("svg_long_name_details", d[0].endswith("%)") and "\u2026" in d[0] and d[1] <= d[2], "%r... %s px of %s" % (d[0][-60:], d[1], d[2]))

        # Frames the budget left out still count in the search.
        load(cdp, pruned)
        drawn = cdp.js("kiln_frames.length")
        cdp.js("kiln_search('^leaf')")
        m = cdp.js("document.getElementById('matched').textContent")
        report("svg_search_pruned_frames", m == "Matched: 50.0%" and drawn < 16100, "%s with %d frames drawn" % (m, drawn))
    finally:
        stop_browser(proc, profile)


if __name__ == "__main__":
    main()
