"""The web app example: a page, /release and /up, on Python's standard library alone (nothing to download).

Slipway runs it (`processes:` in pipelines/webapp.yml): each instance gets its own PORT, and Slipway forwards the
app's public port to the live release's instances. GET / answers the page, GET /release which release serves it,
and GET /up is the health check; it answers 503 while the release holds a file named `down`: push one to see a
failed health check, the old release serving on, and the automatic rollback.

On SIGTERM it stops taking new connections, answers what it has with `Connection: close`, and exits once its
connections are gone, so that a deploy drops no request.
"""
import html
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The release is the directory Slipway runs it in, releases/<id>: a rollback runs an older one again.
RELEASE = os.path.basename(os.environ.get("SLIPWAY_RELEASE_DIR", "?"))
COMMIT = os.environ.get("SLIPWAY_COMMIT", "")[:7]
GREETING = os.environ.get("GREETING", "Hello")
draining = threading.Event()
connections = 0
connections_lock = threading.Condition()


def page(greeting):
    """The home page's HTML."""
    return "<!doctype html>\n<title>webapp</title>\n<h1>%s</h1>\n<p>Release %s, commit %s.</p>\n" % (
        html.escape(greeting), html.escape(RELEASE), html.escape(COMMIT))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        global connections
        super().setup()
        with connections_lock:
            connections += 1

    def finish(self):
        global connections
        super().finish()
        with connections_lock:
            connections -= 1
            connections_lock.notify_all()

    def do_GET(self):
        if self.path == "/up":
            if os.path.exists("down"):
                self.answer(503, "down\n", "text/plain")
            else:
                self.answer(200, "ok\n", "text/plain")
        elif self.path == "/release":
            self.answer(200, RELEASE + "\n", "text/plain")
        elif self.path == "/":
            self.answer(200, page(GREETING), "text/html; charset=utf-8")
        else:
            self.answer(404, "not found\n", "text/plain")

    def answer(self, status, text, kind):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Release", RELEASE)
        if draining.is_set():
            # The client's next request opens a new connection, which reaches the new generation.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def main():
    port = int(os.environ["PORT"])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        draining.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print("release %s listening on %d" % (RELEASE, port), flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    # Each connection still open gets its answer with `Connection: close` on its next request; Slipway's
    # stop_timeout bounds the wait for a client that never sends one.
    with connections_lock:
        while connections > 0:
            connections_lock.wait()
    print("release %s stopped" % RELEASE, flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
