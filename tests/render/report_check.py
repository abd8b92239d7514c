#!/usr/bin/env python3
"""`kiln report` in a real browser: headless Chromium driven over the
DevTools protocol (cdp.py) loads the pages test_report_browser.sh wrote and
checks each view with real mouse and keyboard events: load, zoom, search
(share of the view and of a zoomed frame, bad regex), switch kind, top table
against `kiln top`, call tree against `kiln tree`, focus, sandwich, icicle,
the time chart's span, a diff's colours, and a 1M-line profile's load and
zoom times. A screenshot of each view goes to SHOTS.
usage: report_check.py KILN WORKDIR SHOTS
WORKDIR holds run/ (a server run with interval sets), run.html, diff.html,
before.folded, after.folded, big.html. Prints PASS/FAIL lines."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import (Cdp, Ws, click_at, drag, report, screenshot, start_browser,  # noqa: E402
                 stop_browser, type_text, wait_for)

KILN, WORK, SHOTS = sys.argv[1], sys.argv[2], sys.argv[3]
shots = []


def shot(cdp, name):
    shots.append(screenshot(cdp, os.path.join(SHOTS, name + ".png")))


def folded(path):
    """(stack frames, count) of each line of a folded file."""
    out = []
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        out.append((stack.split(";"), float(count)))
    return out


def top_table(args):
    """kiln top -n 0: {function: (self, total)}, names as the page shows them:
    without perf's annotations (the runtime's kernel frames end in _[k])."""
    text = subprocess.run([KILN, "top", "-n", "0"] + args, capture_output=True, text=True,
                          check=True).stdout
    rows = {}
    for line in text.splitlines()[2:]:
        m = re.match(r"\s*(\S+)\s+\S+%\s+(\S+)\s+\S+%\s\s(.*)$", line)
        if m:
            rows[re.sub(r"_\[[kwij]\]$", "", m.group(3))] = (float(m.group(1)), float(m.group(2)))
    return rows


class Page:
    def __init__(self, cdp):
        self.cdp = cdp

    def open(self, path, hash=""):
        self.cdp.events.clear()
        self.cdp.call("Page.navigate", url="file://" + os.path.abspath(path) + hash)
        return wait_for(self.cdp, "window.kilnReport && window.kilnReport.ready === true", 90)

    def js(self, expr):
        return self.cdp.js(expr)

    def exceptions(self):
        return [e for e in self.cdp.events if e["method"] == "Runtime.exceptionThrown"]

    def client_xy(self, canvas_id, rect_expr):
        """Scrolls the frame RECT of canvas into view; its centre in the viewport."""
        return self.js("""(function () {
            var cv = document.getElementById(%s), R = %s;
            var b = cv.getBoundingClientRect();
            window.scrollBy(0, b.top + R.y - window.innerHeight / 2);
            b = cv.getBoundingClientRect();
            return [b.left + R.x + Math.min(R.w / 2, 40), b.top + R.y + 8];
        })()""" % (json.dumps(canvas_id), rect_expr))

    def rect_of(self, name, which="flame"):
        return ("window.kilnReport.%s().rects.filter(function (R) { var t = window.kilnReport.%s().opts.tree();"
                " return t.name[R.c] >= 0 && window.kilnReport.label(t.name[R.c]) === %s; })"
                ".sort(function (a, b) { return b.w - a.w; })[0]" % (which, which, json.dumps(name)))

    def click_frame(self, name, modifiers=0):
        x, y = self.client_xy("kiln-flame", self.rect_of(name))
        click_at(self.cdp, x, y, modifiers)

    def click(self, selector):
        """Clicks the element's centre. A view or kind button is the page's
        state: clicked again until it is on (a loaded browser can miss a
        click: under make test's load the top view's click once did, and
        the next check read an element that was not there)."""
        toggle = selector.startswith(("button[data-view=", "button[data-kind="))
        for _ in range(3 if toggle else 1):
            x, y = self.js("""(function () { var e = document.querySelector(%s); e.scrollIntoView({block: "center"});
                var b = e.getBoundingClientRect(); return [b.left + b.width / 2, b.top + b.height / 2]; })()""" % json.dumps(selector))
            click_at(self.cdp, x, y)
            if not toggle or wait_for(self.cdp, "document.querySelector(%s).classList.contains('on')" % json.dumps(selector), 10):
                break

    def type_into(self, selector, text):
        """Types text over the box's contents, again until the box holds it
        (under make test's load the Backspace that clears the top table's
        filter was once lost: the next two checks read a table filtered
        to nothing)."""
        for _ in range(3):
            self.click(selector)
            self.js("document.querySelector(%s).select()" % json.dumps(selector))
            if not text:
                # Inserting "" leaves the selection: a user clears the box with
                # Backspace (otherwise the old text would stay in force).
                for kind in ("rawKeyDown", "keyUp"):
                    self.cdp.call("Input.dispatchKeyEvent", type=kind, key="Backspace", code="Backspace",
                                  windowsVirtualKeyCode=8, nativeVirtualKeyCode=8)
            type_text(self.cdp, text)
            if wait_for(self.cdp, "document.querySelector(%s).value === %s" % (json.dumps(selector), json.dumps(text)), 10):
                break

    def text(self, selector):
        return self.js("document.querySelector(%s).textContent" % json.dumps(selector))


def check_run(p):
    run = os.path.join(WORK, "run")
    loaded = p.open(os.path.join(WORK, "run.html"))
    report("report_loads", loaded and not p.exceptions(), "exceptions: %s" % p.exceptions()[:1])
    if not loaded:
        return
    kinds = p.js("window.kilnReport.data.kinds.map(function (k) { return k.kind; })")
    report("report_kinds", "cpu" in kinds and "alloc_bytes" in kinds and "peak_bytes" in kinds,
           "kinds %s" % kinds)
    nrects = p.js("window.kilnReport.flame().rects.length")
    report("report_flame_drawn", nrects > 5, "%s frames drawn" % nrects)
    cpu_top = top_table([run])
    total_cpu = sum(v[0] for v in cpu_top.values())
    js_total = p.js("window.kilnReport.tree().total[0]")
    report("report_total_is_top_total", abs(js_total - total_cpu) < 1e-6, "%s vs %s" % (js_total, total_cpu))
    shot(p.cdp, "report_flame")

    # Hover: tooltip and details line name the frame, numbers first.
    x, y = p.client_xy("kiln-flame", p.rect_of("handle_request"))
    p.cdp.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    det = p.text("#kiln-details")
    report("report_details_numbers_first", det.endswith("\u2014 handle_request") and "samples" in det.split("\u2014")[0],
           repr(det))

    # Zoom by a click: the frame takes the whole width.
    p.click_frame("handle_request")
    z = p.js("(function () { var t = window.kilnReport.tree(); return window.kilnReport.label(t.name[t.zoom]); })()")
    full = p.js("(function () { var f = window.kilnReport.flame(); var R = %s; return [R.w, f.W]; })()" % p.rect_of("handle_request"))
    report("report_click_zooms", z == "handle_request" and abs(full[0] - full[1]) < 1, "zoom %s, width %s" % (z, full))
    report("report_reset_zoom_shown", p.js("getComputedStyle(document.getElementById('kiln-zoomreset')).visibility") == "visible")
    shot(p.cdp, "report_zoom")

    # Search within the zoom: the share is of the zoomed frame.
    lines = [(s, n) for s, n in folded_run(run, "cpu")]
    zpath = p.js("(function () { var t = window.kilnReport.tree(), c = t.zoom, out = [];"
                 " while (c > 0) { if (!t.proc[c]) out.unshift(window.kilnReport.names[t.name[c]]); c = t.parent[c]; } return out; })()")
    under = [(s, n) for s, n in lines if s[:len(zpath)] == zpath]
    want_zoom = 100 * sum(n for s, n in under if "parse_headers" in s[len(zpath) - 1:]) / sum(n for s, n in under)
    p.type_into("#kiln-search", "^parse_headers$")
    got = p.text("#kiln-matched")
    report("report_search_share_of_zoom", got == "Matched: %.1f%% of the zoomed frame" % want_zoom, "%r, want %.1f" % (got, want_zoom))
    shot(p.cdp, "report_search_zoomed")
    p.click("#kiln-zoomreset")
    got = p.text("#kiln-matched")
    want_all = 100 * sum(n for s, n in lines if "parse_headers" in s) / sum(n for s, n in lines)
    report("report_search_share_of_view", got == "Matched: %.1f%% of the view" % want_all, "%r, want %.1f" % (got, want_all))
    highlighted = p.js("(function () { var cv = document.getElementById('kiln-flame'), f = window.kilnReport.flame(), R = %s;"
                       " var d = cv.getContext('2d').getImageData(Math.round((R.x + 2) * devicePixelRatio), Math.round((R.y + 3) * devicePixelRatio), 1, 1).data;"
                       " return [d[0], d[1], d[2]]; })()" % p.rect_of("parse_headers"))
    report("report_search_highlights", highlighted == [230, 0, 230], "pixel %s" % highlighted)
    p.type_into("#kiln-search", "parse(")
    got = p.text("#kiln-matched")
    report("report_bad_regex", got.startswith("bad regex"), repr(got))
    p.type_into("#kiln-search", "")

    # Top table = kiln top, sortable, filterable.
    p.click("button[data-view=top]")
    rows = p.js("Array.from(document.querySelectorAll('#kiln-top tbody tr')).map(function (tr) {"
                " return Array.from(tr.children).map(function (td) { return td.textContent; }); })")
    bad = [(r, cpu_top.get(r[4])) for r in rows
           if cpu_top.get(r[4]) != (float(r[0].replace(",", "")), float(r[2].replace(",", "")))]
    ok = len(rows) == len(cpu_top) and not bad
    report("report_top_is_kiln_top", ok, "%d rows vs %d; differ (page row, kiln top): %s" % (len(rows), len(cpu_top), bad[:2]))
    selfs = [float(r[0].replace(",", "")) for r in rows]
    report("report_top_sorted_by_self", selfs == sorted(selfs, reverse=True))
    p.click("th[data-sort=total]")
    totals = p.js("Array.from(document.querySelectorAll('#kiln-top tbody tr')).map(function (tr) { return parseFloat(tr.children[2].textContent.replace(/,/g, '')); })")
    report("report_top_sort_by_total", totals == sorted(totals, reverse=True) and len(totals) == len(rows), str(totals[:5]))
    p.type_into("#kiln-topfilter", "parse")
    names = p.js("Array.from(document.querySelectorAll('#kiln-top tbody tr td.fn')).map(function (td) { return td.textContent; })")
    report("report_top_filter", names and all("parse" in n for n in names), str(names))
    shot(p.cdp, "report_top")
    p.type_into("#kiln-topfilter", "")
    report("report_top_filter_cleared", p.js("window.kilnReport.state.filterText") == "",
           repr(p.js("window.kilnReport.state.filterText")))

    # Call tree rows are kiln tree's lines.
    tree_txt = subprocess.run([KILN, "tree", "--min", "0", run], capture_output=True, text=True, check=True).stdout.splitlines()
    p.click("button[data-view=tree]")
    trows = p.js("Array.from(document.querySelectorAll('#kiln-tree .trow')).map(function (r) {"
                 " return [parseInt(r.getAttribute('data-depth')), r.children[1].textContent]; })")
    want = set(tree_txt)
    missing = [r for r in trows if ("  " * r[0] + r[1]) not in want]
    report("report_tree_is_kiln_tree", len(trows) > 3 and not missing, "missing %s" % missing[:3])
    shot(p.cdp, "report_tree")

    # Icicle: the root at the top. The view is redrawn on the next animation
    # frame: wait for it (a loaded machine can be slow to get there), and
    # click again if the browser missed the click (seen once under make
    # test's parallel load: the root stayed at y 208 for the whole wait).
    root_y = "window.kilnReport.flame().rects.filter(function (R) { return R.c === 0; })[0].y"
    for _ in range(3):
        p.click("button[data-view=icicle]")
        if wait_for(p.cdp, "(%s) === 0" % root_y, 10):
            break
    y0 = p.js(root_y)
    report("report_icicle_root_on_top", y0 == 0, "root y %s" % y0)
    shot(p.cdp, "report_icicle")

    # Focus: only the stacks through the match.
    p.click("button[data-view=flame]")
    p.type_into("#kiln-focus", "^parse_headers$")
    got = p.js("window.kilnReport.tree().total[0]")
    want = sum(n for s, n in lines if "parse_headers" in s)
    report("report_focus", got == want, "%s vs %s" % (got, want))
    shot(p.cdp, "report_focus")
    p.type_into("#kiln-focus", "(")
    report("report_focus_bad_regex", p.text("#kiln-err-focus").startswith("bad regex"), p.text("#kiln-err-focus"))
    p.type_into("#kiln-focus", "")
    p.type_into("#kiln-ignore", "^parse_headers$")
    got = p.js("window.kilnReport.tree().total[0]")
    report("report_ignore", got == sum(lines_n for _, lines_n in lines) - want, "%s" % got)
    p.type_into("#kiln-ignore", "")

    # Sandwich: shift-click a frame; its callers and callees.
    p.click_frame("parse_headers", modifiers=8)
    view = p.js("window.kilnReport.state.view")
    sw = p.js("(function () { var s = window.kilnReport.sandwich(); return [s.callees.total[0], s.callers.total[0],"
              " window.kilnReport.label(s.callers.name[s.callers.kids[0]])]; })()")
    report("report_sandwich", view == "sandwich" and sw[0] == cpu_top["parse_headers"][1] and sw[1] == sw[0] and sw[2] == "handle_request",
           "view %s, %s" % (view, sw))
    shot(p.cdp, "report_sandwich")

    # Switch kind in place, with its unit; its top table = kiln top --kind.
    p.click("button[data-view=top]")
    p.click("button[data-kind=alloc_bytes]")
    alloc_top = top_table(["--kind", "alloc_bytes", run])
    rows = p.js("Array.from(document.querySelectorAll('#kiln-top tbody tr')).map(function (tr) {"
                " return [tr.children[0].textContent, tr.children[2].textContent, tr.children[4].textContent]; })")
    ok = rows and all(alloc_top.get(r[2]) == (float(r[0].replace(",", "")), float(r[1].replace(",", ""))) for r in rows)
    unit = p.text("#kiln-topcount")
    report("report_switch_kind", ok and "bytes" in unit and len(rows) == len(alloc_top), "%s %s" % (rows[:2], unit))
    shot(p.cdp, "report_kind_alloc")
    p.click("button[data-kind=cpu]")
    p.click("button[data-view=flame]")

    # The time chart: a click on an interval shows that interval alone.
    has = p.js("!!document.getElementById('kiln-time')")
    report("report_time_chart", has)
    if has:
        sets = p.js("window.kilnReport.data.procs[0].sets")
        first = sets[0]
        x, y = p.js("""(function () { var cv = document.getElementById('kiln-time'); cv.scrollIntoView({block: 'center'});
            var b = cv.getBoundingClientRect(), d = window.kilnReport.data.procs[0].sets, t0 = Infinity, t1 = -Infinity;
            window.kilnReport.data.procs.forEach(function (p) { p.sets.forEach(function (s) { t0 = Math.min(t0, s.t0); t1 = Math.max(t1, s.t1); }); });
            var mid = (d[0].t0 + d[0].t1) / 2;
            return [b.left + 34 + (mid - t0) / (t1 - t0) * (b.width - 68), b.top + b.height - 30]; })()""")
        click_at(p.cdp, x, y)
        files = sorted(f for f in os.listdir(run) if re.match(r".*\.\d+\.\d{8}T\d{6}Z-\d{4}\.cpu\.folded$", f))
        want = sum(n for _, n in folded(os.path.join(run, files[0])))
        got = p.js("window.kilnReport.tree().total[0]")
        report("report_time_span_profile", got == want, "span total %s, first interval %s (%s)" % (got, want, files[0]))
        shot(p.cdp, "report_time_span")
        x0, x1, y = p.js("""(function () { var cv = document.getElementById('kiln-time'); var b = cv.getBoundingClientRect();
            return [b.left + 36, b.right - 36, b.top + b.height - 30]; })()""")
        drag(p.cdp, x0, x1, y)
        got = p.js("window.kilnReport.tree().total[0]")
        want = sum(sum(n for _, n in folded(os.path.join(run, f))) for f in files)
        report("report_time_drag_all", got == want, "%s vs %s" % (got, want))
        p.click("#kiln-clearspan")
        report("report_time_clear", p.js("window.kilnReport.tree().total[0]") == total_cpu)
    report("report_no_exceptions", not p.exceptions(), str(p.exceptions()[:1]))


def folded_run(run, kind):
    """The lines kiln top reads for KIND of a run directory (its exit set)."""
    out = []
    for f in sorted(os.listdir(run)):
        if re.match(r"[^.]+\.\d+\.%s\.folded$" % kind, f):
            out += folded(os.path.join(run, f))
    return out


def check_diff(p):
    loaded = p.open(os.path.join(WORK, "diff.html"))
    report("report_diff_loads", loaded and not p.exceptions(), str(p.exceptions()[:1]))
    if not loaded:
        return
    before = {";".join(s): n for s, n in folded(os.path.join(WORK, "before.folded"))}
    after = {";".join(s): n for s, n in folded(os.path.join(WORK, "after.folded"))}
    # Expected fill of each drawn frame, from the files: its own change.
    info = p.js("""(function () { var t = window.kilnReport.tree(), f = window.kilnReport.flame(), cv = document.getElementById('kiln-flame');
        var ctx = cv.getContext('2d'), out = [];
        f.rects.forEach(function (R) {
            if (R.c === 0 || R.c !== R.c) return;
            var p = [], c = R.c; while (c > 0) { if (!t.proc[c]) p.unshift(window.kilnReport.names[t.name[c]]); c = t.parent[c]; }
            var d = ctx.getImageData(Math.round((R.x + 1) * devicePixelRatio), Math.round((R.y + 1) * devicePixelRatio), 1, 1).data;
            out.push([p.join(';'), [d[0], d[1], d[2]], t.maxDelta]);
        });
        return out; })()""")
    bad = []
    for stack, rgb, maxd in info:
        if not stack:
            continue
        own = after.get(stack, 0) - before.get(stack, 0)
        sub_a = sum(n for s, n in after.items() if s == stack or s.startswith(stack + ";"))
        sub_b = sum(n for s, n in before.items() if s == stack or s.startswith(stack + ";"))
        if sub_b == 0:
            want = [190, 0, 0]
        elif own > 0:
            g = int(210 * (maxd - own) / maxd)
            want = [255, g, g]
        elif own < 0:
            r = int(210 * (maxd + own) / maxd)
            want = [r, r, 255]
        else:
            want = [255, 255, 255]
        if rgb != want:
            bad.append((stack, rgb, want))
    report("report_diff_own_change_colours", info and not bad, "%d frames; wrong %s" % (len(info), bad[:3]))
    shot(p.cdp, "report_diff")
    p.click("button[data-view=top]")
    first = p.js("Array.from(document.querySelectorAll('#kiln-top tbody tr')).map(function (tr) { return Math.abs(parseFloat(tr.children[2].textContent.replace(/,/g, ''))); })")
    report("report_diff_table_by_change", first == sorted(first, reverse=True), str(first))
    shot(p.cdp, "report_diff_top")


def check_extras(p):
    """Kernel time, annotations, collapse recursion and short names."""
    loaded = p.open(os.path.join(WORK, "kernel.html"))
    report("report_kernel_loads", loaded and not p.exceptions(), str(p.exceptions()[:1]))
    if not loaded:
        return
    btn = p.text("button[data-kind=cpu]")
    report("report_kernel_share_shown", "(kernel 30.0%)" in btn, repr(btn))
    labels = p.js("(function () { var t = window.kilnReport.tree(); return window.kilnReport.flame().rects.map(function (R) {"
                  " return t.name[R.c] >= 0 ? window.kilnReport.label(t.name[R.c]) : ''; }); })()")
    report("report_annotation_stripped", "ksys_pread64" in labels and not any("_[" in l for l in labels), str(labels))
    rgb = p.js("(function () { var cv = document.getElementById('kiln-flame'), R = %s;"
               " var d = cv.getContext('2d').getImageData(Math.round(R.x + 2), Math.round(R.y + 3), 1, 1).data; return [d[0], d[1], d[2]]; })()"
               % p.rect_of("ksys_pread64"))
    report("report_kernel_orange", rgb[2] == 0 and rgb[0] >= 190 and rgb[1] < rgb[0], str(rgb))
    shot(p.cdp, "report_kernel")
    p.open(os.path.join(WORK, "rec.html"))
    deep = p.js("(function () { var t = window.kilnReport.tree(), m = 0; for (var c = 1; c < t.n; c++) { var d = 0;"
                " for (var a = c; a > 0; a = t.parent[a]) d++; m = Math.max(m, d); } return [m, t.total[0]]; })()")
    p.click("#kiln-collapse")
    flat = p.js("(function () { var t = window.kilnReport.tree(), m = 0; for (var c = 1; c < t.n; c++) { var d = 0;"
                " for (var a = c; a > 0; a = t.parent[a]) d++; m = Math.max(m, d); } return [m, t.total[0]]; })()")
    report("report_collapse_recursion", flat[0] == deep[0] - 4 and flat[1] == deep[1], "depth %s -> %s" % (deep, flat))
    p.click("#kiln-collapse")
    p.click("#kiln-short")
    lab = p.js("window.kilnReport.flame().rects.map(function (R) { var t = window.kilnReport.tree(); return t.name[R.c] >= 0 ? window.kilnReport.label(t.name[R.c]) : ''; })")
    report("report_short_names", "ns::Map::find" in lab, str(lab))
    shot(p.cdp, "report_short_names")
    # The state lives in the URL: a reload with it shows the same view.
    for _ in range(3):  # a click a loaded browser missed is clicked again
        p.click_frame("solve")
        if wait_for(p.cdp, "location.hash.indexOf('z=') >= 0", 10):
            break
    p.type_into("#kiln-hide", "^fib$")
    wait_for(p.cdp, "location.hash.indexOf('h=%5Efib%24') >= 0 && location.hash.indexOf('z=') >= 0", 20)
    h = p.js("location.hash")
    p.cdp.call("Page.navigate", url="about:blank")
    p.open(os.path.join(WORK, "rec.html"), h)
    wait_for(p.cdp, "window.kilnReport.state.hide === '^fib$'", 20)
    st = p.js("(function () { var s = window.kilnReport.state, t = window.kilnReport.tree();"
              " return [s.short, s.hide, window.kilnReport.label(t.name[t.zoom]), document.getElementById('kiln-short').checked,"
              " document.getElementById('kiln-hide').value]; })()")
    report("report_url_state", st == [True, "^fib$", "solve", True, "^fib$"], "%s from %s" % (st, h))
    p.type_into("#kiln-focus", "^no_such_function$")
    report("report_filters_leave_nothing", p.js("!!document.getElementById('kiln-empty')") and not p.exceptions(),
           str(p.exceptions()[:1]))


def check_big(p):
    path = os.path.join(WORK, "big.html")
    size = os.path.getsize(path)
    report("report_big_file_small", size < 8 << 20, "%d bytes" % size)
    t0 = time.time()
    loaded = p.open(path)
    load = time.time() - t0
    report("report_big_loads", loaded and not p.exceptions(), "%.1f s; %s" % (load, p.exceptions()[:1]))
    if not loaded:
        return
    # Zoom three levels down, timing each redraw inside the page.
    times = []
    for _ in range(3):
        ms = p.js("""(function () { var f = window.kilnReport.flame(), t = window.kilnReport.tree();
            var R = f.rects.filter(function (R) { return R.c !== t.zoom && t.parent[R.c] >= 0 && !R.faded; })
                           .sort(function (a, b) { return b.w - a.w; })[1];
            var s = performance.now(); t.zoom = R.c; window.kilnReport.state.zoomPath = [];
            window.kilnReport.render(); return performance.now() - s; })()""")
        times.append(ms)
    x, y = p.client_xy("kiln-flame", "window.kilnReport.flame().rects.filter(function (R) { return R.c === 0; })[0]")
    s = time.time()
    click_at(p.cdp, x, y)
    click_ms = 1000 * (time.time() - s)
    zoomed = p.js("window.kilnReport.tree().zoom")
    print("INFO report_big: %d bytes, load %.1f s, zoom redraws %s ms, click round trip %.0f ms"
          % (size, load, ["%.0f" % t for t in times], click_ms))
    report("report_big_zoom_smooth", max(times) < 1000 and zoomed == 0, "redraws %s ms" % times)
    shot(p.cdp, "report_big")


def main():
    proc, profile, ws_url = start_browser("about:blank")
    try:
        cdp = Cdp(Ws(ws_url))
        cdp.call("Page.enable")
        cdp.call("Runtime.enable")
        cdp.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
        p = Page(cdp)
        check_run(p)
        check_diff(p)
        check_extras(p)
        if os.path.exists(os.path.join(WORK, "big.html")):
            check_big(p)
    finally:
        stop_browser(proc, profile)
    for s in shots:
        print("INFO screenshot %s" % s)


if __name__ == "__main__":
    main()
