"""Child processes: tracked so that a finally block can end them all, and found through /proc."""

import ctypes
import os
import signal
import subprocess
import threading


def end(process: subprocess.Popen, grace: float, say=None) -> int | None:
    """SIGTERM, then SIGKILL after `grace` seconds; the exit status (negative: ended by that signal)."""
    if process.poll() is None:
        try:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            if say:
                say(f"{os.path.basename(str(process.args[0]))} (pid {process.pid}) ignored SIGTERM for {grace:.0f}s; "
                    "killing it")
            process.kill()
            process.wait(timeout=5)
        except ProcessLookupError:
            pass
    return process.returncode


class Processes:
    """Every process started through popen, to be ended by end_all (daemons get SIGTERM first, so that they end
    their steps). As the child subreaper, this process also inherits what a killed child leaves orphaned."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []  # (name, Popen)
        self.subreaper = False
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            # PR_SET_CHILD_SUBREAPER: step processes orphaned by a killed daemon become our children, so that we can
            # reap them (and find them) instead of leaving them to PID 1.
            self.subreaper = libc.prctl(36, 1, 0, 0, 0) == 0
        except OSError:
            pass

    def popen(self, name: str, argv, **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(argv, **kwargs)
        with self.lock:
            self.items.append((name, process))
        return process

    def forget(self, process: subprocess.Popen) -> None:
        with self.lock:
            self.items = [(n, p) for (n, p) in self.items if p is not process]

    def tracked_pids(self) -> set[int]:
        with self.lock:
            return {p.pid for (_, p) in self.items if p.poll() is None}

    def reap_orphans(self) -> None:
        """Reaps zombies that were re-parented to us (never one of our own Popen children)."""
        if not self.subreaper:
            return
        mine = self.tracked_pids()
        me = os.getpid()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in mine:
                continue
            try:
                with open("/proc/%s/stat" % name) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 1 and fields[0] == "Z" and int(fields[1]) == me:
                try:
                    os.waitpid(int(name), os.WNOHANG)
                except ChildProcessError:
                    pass

    def end_all(self) -> None:
        with self.lock:
            items = list(reversed(self.items))
            self.items = []
        for _, process in items:
            try:
                end(process, grace=8)
            except (OSError, subprocess.TimeoutExpired):
                pass


def step_processes(root: str) -> list[dict]:
    """Processes started by a Slipway step of an app deployed under root (their environment names a deploy_to
    there): pid, command line, app and deployment."""
    found = []
    marker = ("SLIPWAY_DEPLOY_TO=" + root).encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                environ = f.read()
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        if marker not in environ:
            continue
        variables = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
        found.append({
            "pid": int(name), "cmdline": cmdline,
            "app": variables.get(b"SLIPWAY_APP", b"").decode(),
            "deployment": int(variables.get(b"SLIPWAY_DEPLOYMENT", b"0") or 0),
        })
    return found


def child_pids(pid: int) -> list[int]:
    """The children of a process (all its threads')."""
    found = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                    found += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return found


def kill_pids(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
