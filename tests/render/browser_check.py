#!/usr/bin/env python3
"""Drives a real headless Chromium over the DevTools protocol (standard
library only: a minimal WebSocket client) to check a kiln flame graph SVG:
a click zooms a frame, a search (Ctrl-F, answered prompt) shows the matched
share, the case toggle, the details line and the URL state.
usage: browser_check.py SVG CLICK_NAME SEARCH_REGEX EXPECTED_PCT EXPECTED_ZOOMED_PCT
(the share of the search within CLICK_NAME's frame, as flamegraph.pl shows it zoomed)
Prints PASS/FAIL lines like the shell tests."""
import json
import os
import shutil
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Cdp, Ws, report, start_browser, wait_for  # noqa: E402


def frame_expr(name):
    return ("kiln_frames.filter(function (f) { return f.name === %s; })[0]" % json.dumps(name))


def click_at(cdp, x, y):
    cdp.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    for kind in ("mousePressed", "mouseReleased"):
        cdp.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def center_of(cdp, expr):
    box = cdp.js("(function () { var b = (%s).getBoundingClientRect();"
                 " return [b.left + b.width / 2, b.top + b.height / 2]; })()" % expr)
    return box[0], box[1]


def search_with_keys(cdp, term):
    """Ctrl-F as a real key press; the prompt it opens is answered."""
    key_id = cdp.send("Input.dispatchKeyEvent", type="rawKeyDown", modifiers=2, key="f",
                      code="KeyF", windowsVirtualKeyCode=70, nativeVirtualKeyCode=70)
    # The key press does not complete while the prompt is open.
    cdp.event("Page.javascriptDialogOpening")
    cdp.call("Page.handleJavaScriptDialog", accept=True, promptText=term)
    cdp.wait(key_id)
    cdp.call("Input.dispatchKeyEvent", type="keyUp", modifiers=2, key="f", code="KeyF",
             windowsVirtualKeyCode=70, nativeVirtualKeyCode=70)


def main():
    svg, click_name, regex, expected, zoomed = sys.argv[1:6]
    url = "file://" + os.path.abspath(svg)
    proc, profile, ws_url = start_browser(url)
    try:
        cdp = Cdp(Ws(ws_url))
        cdp.call("Page.enable")
        cdp.call("Runtime.enable")
        loaded = wait_for(cdp, "typeof kiln_frames !== 'undefined' && kiln_frames.length > 0")
        report("browser_loads_svg", loaded, "script did not initialise")
        if not loaded:
            return
        nframes = cdp.js("kiln_frames.length")
        report("browser_frames_read", nframes == cdp.js("document.getElementById('frames').children.length"))

        # Hover: the details line names the frame.
        target = frame_expr(click_name)
        x, y = center_of(cdp, target + ".r")
        cdp.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        details = cdp.js("document.getElementById('details').textContent")
        report("browser_details_line", details.startswith("Function: " + click_name + " ("),
               "details: %r" % details)

        # Click: the frame fills the width, its ancestors fade, others hide.
        click_at(cdp, x, y)
        width = cdp.js("parseFloat(%s.r.getAttribute('width'))" % target)
        full = cdp.js("kiln_cfg.width - 2 * kiln_cfg.xpad")
        report("browser_click_zooms", abs(width - full) < 0.11, "width %s, want %s" % (width, full))
        parents = cdp.js("kiln_frames.filter(function (f) { return f.g.classList.contains('parent'); }).length")
        depth = cdp.js(target + ".d")
        report("browser_zoom_ancestors_faded", parents == depth, "%s faded, depth %s" % (parents, depth))
        hidden = cdp.js("kiln_frames.filter(function (f) { return f.g.classList.contains('hide'); }).length")
        report("browser_zoom_hides_others", hidden > 0, "nothing hidden")
        unzoom_shown = cdp.js("!document.getElementById('unzoom').classList.contains('hide')")
        report("browser_reset_zoom_shown", unzoom_shown)
        report("browser_zoom_in_url", "x=" in cdp.js("location.hash") and "y=" in cdp.js("location.hash"),
               cdp.js("location.hash"))
        zoomed_hash = cdp.js("location.hash")

        # Reset zoom by clicking it.
        ux, uy = center_of(cdp, "document.getElementById('unzoom')")
        click_at(cdp, ux, uy)
        width = cdp.js("%s.r.getAttribute('width')" % target)
        orig = cdp.js(target + ".w")
        report("browser_reset_zoom", width == orig, "width %s, want %s" % (width, orig))

        # Search through Ctrl-F and the prompt.
        search_with_keys(cdp, regex)
        matched = cdp.js("document.getElementById('matched').textContent")
        report("browser_search_matched", matched == "Matched: %s%%" % expected,
               "got %r, want 'Matched: %s%%'" % (matched, expected))
        magenta = cdp.js("kiln_frames.filter(function (f) { return f.r.getAttribute('fill') === 'rgb(230,0,230)'; }).length")
        report("browser_search_highlights", magenta > 0, "no frame highlighted")
        report("browser_search_in_url", "s=" in cdp.js("location.hash"), cdp.js("location.hash"))

        # Case toggle: the upper-case regex matches only when ignoring case.
        cdp.js("kiln_search(%s)" % json.dumps(regex.upper()))
        before = cdp.js("document.getElementById('matched').textContent")
        ix, iy = center_of(cdp, "document.getElementById('ignorecase')")
        click_at(cdp, ix, iy)
        after = cdp.js("document.getElementById('matched').textContent")
        report("browser_case_toggle", after == "Matched: %s%%" % expected and before != after,
               "before %r, after %r" % (before, after))

        # The URL state comes back on load.
        cdp.call("Page.navigate", url="about:blank")
        wait_for(cdp, "typeof kiln_frames === 'undefined'")
        cdp.call("Page.navigate", url=url + zoomed_hash + "&s=" + urllib.parse.quote(regex))
        wait_for(cdp, "typeof kiln_frames !== 'undefined' && kiln_frames.length > 0 && kiln_zoomed !== null")
        restored = cdp.js("kiln_zoomed !== null && kiln_zoomed.name === %s" % json.dumps(click_name))
        report("browser_url_restores_zoom", restored, "zoom not restored from %s" % zoomed_hash)
        matched = cdp.js("document.getElementById('matched').textContent")
        report("browser_url_restores_search", matched == "Matched: %s%%" % zoomed,
               "%s, want the zoomed frame's %s%%" % (matched, zoomed))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
