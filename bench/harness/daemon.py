"""`slipway serve` as a child process of a harness."""

import os
import re
import subprocess
import time

from harness import HarnessError, log, processes, web

LISTENING = re.compile(rb"listening on http://127\.0\.0\.1:(\d+)")
CRASH = re.compile(r"Fatal error|Segmentation|Illegal instruction|Backtrace|Swift runtime failure")


class Daemon:
    """`slipway serve` in its own session, with stdout and stderr appended to a log file (or thrown away when
    there is none). start() returns once it listens: the port is read from the log's `listening on` line, or,
    without a log, /healthz answers on the port it was given."""

    def __init__(self, binary: str, pipelines: str, state: str, *, args=(), port: int = 0,
                 log_path: str | None = None, env: dict | None = None, cwd: str | None = None,
                 token: str | None = None, procs: processes.Processes | None = None):
        self.binary = str(binary)
        self.pipelines = str(pipelines)
        self.state = str(state)
        self.args = [str(a) for a in args]
        self.port = port
        self.log_path = None if log_path is None else str(log_path)
        self.env = env
        self.cwd = cwd
        self.token = token
        self.procs = procs
        self.process: subprocess.Popen | None = None
        self.exit_status: int | None = None

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def argv(self, port: int, extra) -> list[str]:
        return [self.binary, "serve", "--pipelines", self.pipelines, "--state", self.state, "--port", str(port),
                *self.args, *map(str, extra)]

    def start(self, *extra, port: int | None = None, timeout: float = 30.0) -> int:
        """Starts the daemon (on `port`, by default the one it had: 0 the first time, for any free one) with
        `extra` arguments after the others, and returns the port it listens on. Raises HarnessError when it
        exits or says nothing within `timeout` seconds."""
        port = self.port if port is None else port
        argv = self.argv(port, extra)
        offset = 0
        output = subprocess.DEVNULL
        if self.log_path:
            output = open(self.log_path, "a")
            output.write(f"\n$ {' '.join(argv)}\n")
            output.flush()
            offset = output.tell()
        kwargs = dict(stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                      start_new_session=True)
        try:
            self.process = self.procs.popen("slipway serve", argv, **kwargs) if self.procs else subprocess.Popen(argv, **kwargs)
        finally:
            if self.log_path:
                output.close()
        self.exit_status = None
        try:
            self.port = self.wait_listening(offset, port, timeout)
        except HarnessError:
            self.kill9()
            raise
        return self.port

    def wait_listening(self, offset: int, port: int, timeout: float) -> int:
        """The port, once the log (from offset on) says the daemon listens, or without a log, once /healthz
        answers on the port it was given."""
        where = f"; see {self.log_path}" if self.log_path else ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_path:
                with open(self.log_path, "rb") as handle:
                    handle.seek(offset)
                    match = LISTENING.search(handle.read())
                if match:
                    return int(match.group(1))
            elif port and web.healthy(port):
                return port
            if self.process.poll() is not None:
                raise HarnessError(f"slipway serve exited with {self.process.returncode} before listening{where}")
            self.waiting()
            time.sleep(0.01)
        raise HarnessError(f"slipway serve did not listen within {timeout:.0f}s{where}")

    def waiting(self) -> None:
        """Called while start() waits for the daemon to listen."""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit status (negative: ended by a signal)."""
        if self.process is None:
            return None
        self.exit_status = processes.end(self.process, grace, say=log.err)
        if self.procs:
            self.procs.forget(self.process)
        return self.exit_status

    def kill9(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.procs:
            self.procs.forget(self.process)

    def log_text(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_text().splitlines()
        return "daemon log (last lines):\n" + "\n".join("  " + line for line in text[-lines:]) if text else ""

    def crash_lines(self) -> list[str]:
        """The lines of the log that show the daemon crashed."""
        return [line for line in self.log_text().splitlines() if CRASH.search(line)]

    # The API, with the daemon's token when it has one.

    def request(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 30.0):
        return web.request(self.port, method, path, body, headers, token=self.token, timeout=timeout)

    def get(self, path: str):
        return web.get(self.port, path, token=self.token)

    def wait_finished(self, deployment_id: int, timeout: float = 60.0, poll: float = 0.1) -> dict:
        return web.wait_finished(self.port, deployment_id, timeout, poll, token=self.token)

    def wait_apps(self, names, timeout: float = 30.0) -> None:
        web.wait_apps(self.port, names, timeout, token=self.token)
