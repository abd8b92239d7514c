"""A stand-in Pyroscope ingest endpoint for test_render_push.sh.

Listens on 127.0.0.1 (a free port, written to PORT_FILE), answers each POST
with STATUS, records method, path, query, headers and body of every request
as one JSON line in LOG_FILE, and exits after MAX_REQUESTS requests or
LIFETIME seconds, whichever comes first.
usage: push_receiver.py PORT_FILE LOG_FILE STATUS MAX_REQUESTS LIFETIME
"""
import base64
import http.server
import json
import sys
import threading
import urllib.parse


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(length, 64 << 20))
        record = {
            "method": self.command,
            "path": url.path,
            "query": urllib.parse.parse_qs(url.query, keep_blank_values=True),
            "content_type": self.headers.get("Content-Type"),
            "host": self.headers.get("Host"),
            "body_b64": base64.b64encode(body).decode(),
        }
        with open(self.server.log_file, "a") as log:
            log.write(json.dumps(record) + "\n")
        reply = b"ok\n" if self.server.status < 300 else b"invalid parameter: name\n"
        self.send_response(self.server.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        self.server.handled += 1

    def log_message(self, *args):
        pass


def main():
    port_file, log_file, status, max_requests, lifetime = sys.argv[1:6]
    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    server.log_file, server.status, server.handled = log_file, int(status), 0
    server.timeout = 0.2
    threading.Timer(float(lifetime), lambda: setattr(server, "expired", True)).start()
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(port_file + ".tmp", port_file)
    while server.handled < int(max_requests) and not getattr(server, "expired", False):
        server.handle_request()
    server.server_close()
    os._exit(0)


if __name__ == "__main__":
    main()
