"""Reading Server-Sent Events streams: all at once until a condition holds, or followed in a thread."""

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

from harness import HarnessError


def parse(text: str) -> list[tuple[str, str]]:
    """The events in a stream's text, as (event name, data); comments and events without data are left out."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event = _event(block.split("\n"))
        if event:
            events.append(event)
    return events


def _event(lines: list[str]) -> tuple[str, str] | None:
    name, data = "message", []
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return (name, "\n".join(data)) if data else None


def read(port: int, path: str, until, timeout: float, headers: dict | None = None) -> tuple[int, str, str, str | None]:
    """Reads a stream until `until(text)` is true, the stream ends, or `timeout` passes.
    Returns (status, content type, text read, error)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    text = ""
    try:
        connection.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        response = connection.getresponse()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(text):
            chunk = response.read1(65536)
            if not chunk:
                break
            text += chunk.decode("utf-8", "replace")
        return response.status, response.getheader("Content-Type", ""), text, None
    except (socket.timeout, TimeoutError):
        return 0, "", text, "timed out"
    except (OSError, http.client.HTTPException) as error:
        return 0, "", text, f"{type(error).__name__}: {error}"
    finally:
        connection.close()


def events(response) -> Iterator[tuple[str, str]]:
    """The events of an open stream as they arrive, until it ends."""
    lines = []
    while True:
        line = response.readline()
        if not line:
            return
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        if line:
            lines.append(line)
            continue
        event = _event(lines)
        lines = []
        if event:
            yield event


class Follower:
    """Follows a stream of JSON events in a thread and keeps them, with the time each arrived (monotonic ms)."""

    def __init__(self, port: int, path: str = "/api/v1/events", open_timeout: float = 10.0):
        self.port = port
        self.path = path
        self.cond = threading.Condition()
        self.items = []  # (time ms, parsed data)
        self.ready = threading.Event()
        self.ended = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        if not self.ready.wait(open_timeout):
            raise HarnessError("the event stream of port %d did not open" % port)

    def run(self) -> None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=None)
            connection.request("GET", self.path, headers={"Accept": "text/event-stream"})
            response = connection.getresponse()
            self.ready.set()
            for _, data in events(response):
                try:
                    value = json.loads(data)
                except ValueError:
                    continue
                with self.cond:
                    self.items.append((time.monotonic() * 1000.0, value))
                    self.cond.notify_all()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            self.ready.set()
            with self.cond:
                self.ended = True
                self.cond.notify_all()

    def wait_for(self, predicate, timeout: float, abort=lambda: False):
        """The first item (time, value) that predicate accepts, or None on timeout, abort or the stream's end."""
        deadline = time.monotonic() + timeout
        index = 0
        with self.cond:
            while True:
                if abort():
                    return None
                while index < len(self.items):
                    item = self.items[index]
                    index += 1
                    if predicate(item[1]):
                        return item
                if self.ended:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(min(remaining, 0.05))
