"""The web app example: a page and a health route, on the standard library alone (nothing to download).

It listens on 127.0.0.1:$PORT (8000 by default). GET / answers the page, GET /up answers which release serves it.
bin/restart starts it for each release; SIGTERM stops it.
"""

import http.server
import os
import signal
import sys

RELEASE = os.path.basename(os.environ.get("SLIPWAY_RELEASE_DIR", "dev"))
COMMIT = os.environ.get("SLIPWAY_COMMIT", "unknown")[:7]


def page(greeting: str) -> str:
    """The home page's HTML."""
    return f"<!doctype html>\n<title>webapp</title>\n<h1>{greeting}</h1>\n<p>Release {RELEASE}, commit {COMMIT}.</p>\n"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/":
            self.answer(200, "text/html", page(os.environ.get("GREETING", "Hello")))
        elif self.path == "/up":
            self.answer(200, "text/plain", f"release {RELEASE}\n")
        else:
            self.answer(404, "text/plain", "not found\n")

    def answer(self, status: int, kind: str, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind + "; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"release {RELEASE} listening on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
