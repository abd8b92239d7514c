#!/usr/bin/env python3
"""Drives a real headless Chromium over the DevTools protocol (standard
library only: a minimal WebSocket client) to check a kiln flame graph SVG:
a click zooms a frame, a search (Ctrl-F, answered prompt) shows the matched
share, the case toggle, the details line and the URL state.
usage: browser_check.py SVG CLICK_NAME SEARCH_REGEX EXPECTED_PCT
Prints PASS/FAIL lines like the shell tests."""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


class Ws:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n") % (u.path, u.hostname, u.port, key)
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise RuntimeError("websocket handshake failed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("websocket handshake refused: %r" % head[:80])

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise RuntimeError("websocket closed")
            buf += chunk
        return buf

    def send(self, text):
        data = text.encode()
        head = bytes([0x81])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise RuntimeError("websocket closed by the browser")
            if opcode == 9:
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class Cdp:
    def __init__(self, ws):
        self.ws, self.next_id, self.events, self.replies = ws, 0, [], {}

    def send(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def call(self, method, **params):
        return self.wait(self.send(method, **params), method)

    def wait(self, my_id, method=""):
        while True:
            msg = self.replies.pop(my_id, None) or json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def event(self, name, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, e in enumerate(self.events):
                if e["method"] == name:
                    return self.events.pop(i)
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
            elif "id" in msg:
                self.replies[msg["id"]] = msg
        raise RuntimeError("no %s event" % name)

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError("script error: %s" % r["exceptionDetails"])
        return r["result"].get("value")


def report(name, ok, why=""):
    print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why)))
    sys.stdout.flush()


def start_browser(url):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        report("browser_found", False, "chromium is not installed")
        sys.exit(0)
    profile = tempfile.mkdtemp(prefix="kiln-chromium-")
    proc = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
         "--remote-debugging-port=0", "--window-size=1400,1000", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.exists(port_file):
        time.sleep(0.1)
    time.sleep(0.2)
    port = int(open(port_file).read().split()[0])
    for _ in range(100):
        targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port))
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return proc, profile, pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.1)
    raise RuntimeError("no page target")


def wait_for(cdp, expr, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cdp.js(expr):
                return True
        except RuntimeError:
            pass
        time.sleep(0.1)
    return False


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
    svg, click_name, regex, expected = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
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
        report("browser_url_restores_search", matched == "Matched: %s%%" % expected, matched)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
