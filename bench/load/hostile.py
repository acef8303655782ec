"""Hostile clients beside the load (issue 18): connections that hold the daemon's sockets, and event-stream
subscribers that never read.

- `HostileClients` keeps N connections open for as long as the load runs: half of them idle (connected, never a
  byte), half slowloris (a request line, then one header byte every few seconds, never the end of the headers).
  One the daemon closes (its --idle-timeout) is opened again, so the pressure stays. Meanwhile a prober asks
  /healthz on a new connection every 100 ms and keeps each answer's time.
- `silent_subscribers` deploys an app whose build prints a large log, opens N `text/event-stream` requests for that
  log that never read a byte, and follows the daemon's resident memory while they hang, and after they are gone.

Only the Python 3 standard library is used.
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time

from harness import web
from harness.git import WorkRepo, identity_env
from harness.stats import percentile


def raise_descriptor_limit(wanted: int) -> None:
    """Raises this process's soft limit on open files to `wanted` (or its hard limit, when lower)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def resident_kib(pid: int) -> int:
    """A process's resident memory (VmRSS), in KiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class HostileClients:
    """N idle and slowloris connections, held open (and opened again when closed), and a /healthz prober."""

    def __init__(self, port: int, count: int, minimum_seconds: float = 10.0):
        self.port = port
        self.count = count
        # /healthz is timed for at least this long, however soon the deliveries are done.
        self.minimum_seconds = minimum_seconds
        self.probe_started = 0.0
        self.held_at_end = 0
        self.stop = threading.Event()
        self.sockets: list[socket.socket | None] = [None] * count
        self.opened = 0
        self.closed_by_server = 0
        self.refused = 0
        self.health: list[float] = []
        self.health_errors: list[str] = []
        self.threads = [threading.Thread(target=self.hold, daemon=True),
                        threading.Thread(target=self.probe, daemon=True)]

    def start(self) -> None:
        """Returns once every connection has been opened (or refused), with /healthz being timed from then on."""
        raise_descriptor_limit(self.count + 512)
        holder, prober = self.threads
        holder.start()
        deadline = time.monotonic() + 60
        while self.opened + self.refused < self.count and time.monotonic() < deadline:
            time.sleep(0.05)
        self.probe_started = time.monotonic()
        prober.start()

    def finish(self) -> None:
        remaining = self.probe_started + self.minimum_seconds - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        self.held_at_end = sum(1 for sock in self.sockets if sock is not None)
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        for index, sock in enumerate(self.sockets):
            if sock is not None:
                sock.close()
                self.sockets[index] = None

    def open(self, index: int) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            self.refused += 1
            return
        sock.setblocking(False)
        if index % 2:
            try:
                sock.send(b"GET /api/v1/apps HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            except OSError:
                pass
        self.sockets[index] = sock
        self.opened += 1

    def hold(self) -> None:
        """Opens every connection, then every 2 s sends each slowloris one more header byte and reopens the closed."""
        for index in range(self.count):
            if self.stop.is_set():
                return
            self.open(index)
        while not self.stop.wait(2.0):
            for index, sock in enumerate(self.sockets):
                if sock is None:
                    self.open(index)
                    continue
                try:
                    if sock.recv(1) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
                except OSError:
                    sock.close()
                    self.sockets[index] = None
                    self.closed_by_server += 1
                    continue
                if index % 2:
                    try:
                        sock.send(b"X")
                    except OSError:
                        pass

    def probe(self) -> None:
        while not self.stop.wait(0.1):
            started = time.perf_counter()
            try:
                status, _ = web.request(self.port, "GET", "/healthz", timeout=10)
            except OSError as error:
                status = type(error).__name__
            elapsed = time.perf_counter() - started
            if status == 200:
                self.health.append(elapsed)
            else:
                self.health_errors.append(str(status))

    def summary(self) -> list[str]:
        ms = [value * 1000 for value in self.health]
        return [
            f"hostile connections:   {self.count} (half idle, half slowloris), {self.opened} opened, "
            f"{self.held_at_end} still held at the end, {self.closed_by_server} closed by the daemon and opened "
            f"again, {self.refused} refused",
            f"/healthz meanwhile:    over {self.minimum_seconds:g}s or more, {len(ms)} answers, p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
            f"max {max(ms, default=0):.1f} ms, {len(self.health_errors)} failed (goal: p99 < 100 ms)",
        ]

    def problems(self) -> list[str]:
        problems = []
        if self.health_errors:
            problems.append(f"/healthz failed {len(self.health_errors)} times beside the hostile connections")
        if not self.health:
            problems.append("/healthz never answered beside the hostile connections")
        return problems


CHATTY = """\
repository: {bare}
branch: main
deploy_to: {deploy_to}
build:
  - python3 -c 'import sys; line = "x" * 99 + "\\\\n"; [sys.stdout.write(line) for _ in range({lines})]'
"""


def add_chatty_app(root: str, pipelines: str, mib: int) -> str:
    """An app (`chatty`) of its own repository whose build prints `mib` MiB; returns its name."""
    env = identity_env("Load Bench", "load@example.com", home=os.path.join(root, "home"))
    repo = WorkRepo(os.path.join(root, "chatty-work"), os.path.join(root, "chatty.git"), env)
    repo.write("README", "a build that talks a lot\n")
    repo.commit("chatty")
    repo.push()
    with open(os.path.join(pipelines, "chatty.yml"), "w") as handle:
        handle.write(CHATTY.format(bare=repo.bare, deploy_to=os.path.join(root, "deploy", "chatty"),
                                   lines=mib * 1024 * 1024 // 100))
    return "chatty"


def silent_subscribers(port: int, pid: int, app: str, count: int, hold: float = 10.0) -> tuple[list[str], list[str]]:
    """Deploys `app`, then holds `count` event-stream requests for its log that never read, for `hold` seconds,
    sampling the daemon's resident memory; then closes them and samples it again. Returns the summary lines and
    the problems."""
    status, body = web.request(port, "POST", f"/api/v1/apps/{app}/deploy", {})
    if status != 202:
        return [], [f"the {app} deploy was answered {status}: {body}"]
    deployment = web.wait_finished(port, body["id"], timeout=300)
    log_bytes = 0
    status, text = web.request(port, "GET", f"/api/v1/deployments/{body['id']}/log", timeout=60)
    if status == 200 and isinstance(text, str):
        log_bytes = len(text.encode())
    before = resident_kib(pid)
    raise_descriptor_limit(count + 512)
    held = []
    request = (f"GET /api/v1/deployments/{body['id']}/log HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        # The smallest receive buffer the kernel allows, so that the daemon's writes back up at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(request)
        held.append(sock)
    peak = before
    until = time.monotonic() + hold
    while time.monotonic() < until:
        peak = max(peak, resident_kib(pid))
        time.sleep(0.2)
    healthy = web.healthy(port)
    for sock in held:
        sock.close()
    time.sleep(5)
    after = resident_kib(pid)
    time.sleep(25)
    later = resident_kib(pid)
    lines = [
        f"silent subscribers:    {count} event streams of a {log_bytes / 1048576:.1f} MiB log (deployment "
        f"{body['id']}, {deployment['status']}), never read, held {hold:g}s",
        f"daemon memory (RSS):   {before / 1024:.1f} MB before, peak {peak / 1024:.1f} MB while held, "
        f"{after / 1024:.1f} MB 5 s after they closed, {later / 1024:.1f} MB 30 s after (goal: peak < 150 MB, and "
        "back down)",
    ]
    problems = []
    if deployment["status"] != "succeeded":
        problems.append(f"the {app} deployment did not succeed: {deployment['status']}")
    if not healthy:
        problems.append("/healthz did not answer while the silent subscribers were held")
    if peak > 150 * 1024:
        problems.append(f"the daemon's memory peaked at {peak / 1024:.1f} MB beside the silent subscribers (goal < 150 MB)")
    if later > before + 20 * 1024:
        problems.append(f"the daemon's memory did not come back down after the silent subscribers left: "
                        f"{later / 1024:.1f} MB 30 s after, against {before / 1024:.1f} MB before (allowed: +20 MB)")
    return lines, problems
