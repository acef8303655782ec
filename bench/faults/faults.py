#!/usr/bin/env python3
"""Crash consistency and fault injection for Slipway (issue 6, "Proof under fire").

Run it through bench/faults/run:

    bench/faults/run [--kills 50] [--seed 1] [--slipway PATH] [--out FILE]

Three parts, each against the real `slipway serve` binary and real git repositories made here:

1. Crash consistency. The daemon is killed with SIGKILL at chosen moments of deploys and rollbacks: a target
   phase is picked per kill round-robin (fetch, checkout, build, test, migrate, switch, activate, health, for
   deploys and for rollbacks to kept releases, plus the watcher's network fetch over git:// through a slow
   proxy), the harness follows /api/v1/events until the deployment reaches that phase, waits a random few ms and
   kills. Half the switch rounds instead spin on readlink(current) and kill the moment the link moves; every
   other build round kills the moment the step's first process exists. Build and deploy health rounds make
   their step last 3 s, so that recovery has a live process group to end. The phase actually hit is read from
   (a copy of) the store after the kill. The daemon is restarted on the same state and the invariants are
   checked (see check_app and run_round); every 5 rounds and at the end a real `git push` through the installed
   hook must deploy (and a push notice for the git:// app).
2. A step fills the disk: deploy_to (and, in a second variant, the state too) on a 16 MiB tmpfs; a build step
   writes until the disk is full.
3. The mirror's remote disappears: the bare repository is moved away (for a local-path app and for a git://
   app); manual deploys, pushes, polls and rollbacks are tried; then the repository comes back.

Only the Python standard library is used. Exit status: 0 when no invariant was violated, 1 when one was, 2 when
the harness itself failed.
"""

import argparse
import collections
import ctypes
import datetime
import hashlib
import http.client
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

DEFAULT_SLIPWAY = os.environ.get(
    "SLIPWAY_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".build", "debug", "slipway"))
ZERO_SHA = "0" * 40
FINISHED = {"succeeded", "failed", "cancelled", "superseded", "interrupted"}
LEFTOVER_PREFIXES = (".current.tmp-", ".removing-")

# The kill targets, in round-robin order. The first eight (the short form) already cover fetch, checkout, build,
# migrate, switch, activate and health, of deploys and of rollbacks, and the watcher's network fetch.
TARGETS = [
    ("deploy", "fetch"),
    ("deploy", "checkout"),
    ("rollback", "switch"),
    ("deploy", "build"),
    ("deploy", "migrate"),
    ("rollback", "activate"),
    ("deploy", "health"),
    ("deploy", "mirror-fetch"),
    ("deploy", "switch"),
    ("deploy", "activate"),
    ("rollback", "health"),
    ("deploy", "test"),
    ("rollback", "fetch"),
]

# How long to wait after the deployment enters the target phase before the kill, in ms. Short phases (fetch is a
# few store writes when the watcher has fetched already; switch is one rename and two store writes) get no delay.
DELAYS_MS = {
    "fetch": (0.0, 1.0),
    "checkout": (0.0, 25.0),
    "build": (0.0, 40.0),
    "test": (0.0, 25.0),
    "migrate": (0.0, 25.0),
    "switch": (0.0, 0.5),
    "activate": (0.0, 30.0),
    "health": (0.0, 25.0),
}

# The crash app's phases before the switch, and how many steps each has: a live release must come from a
# deployment whose steps in these phases all succeeded.
WEB_BUILD_STEPS = {"build": 2, "test": 1, "migrate": 1}


# ----------------------------------------------------------------------------------------------------------------
# Small helpers


class HarnessError(Exception):
    """The harness could not do what it needed (not a finding about the product)."""


def now_ms():
    return time.monotonic() * 1000.0


def log(message):
    print(message, flush=True)


def git_env(home):
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME="Fault Bench", GIT_AUTHOR_EMAIL="faults@example.invalid",
        GIT_COMMITTER_NAME="Fault Bench", GIT_COMMITTER_EMAIL="faults@example.invalid",
        GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(home, "gitconfig"), HOME=home,
        GIT_TERMINAL_PROMPT="0", LANG="C", LC_ALL="C")
    return env


def blob_sha(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(port, method, path, body=None, timeout=30.0):
    """(status, parsed JSON or text). Raises OSError when the daemon cannot be reached."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return response.status, parsed
    finally:
        conn.close()


def error_message(answer):
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return "%s: %s" % (answer["error"].get("code"), answer["error"].get("message"))
    return str(answer)[:500]


def read_link(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def link_release(target):
    match = re.fullmatch(r"releases/(\d+)", target or "")
    return int(match.group(1)) if match else None


# ----------------------------------------------------------------------------------------------------------------
# Processes: everything started here is tracked and ended in a finally block


class Processes:
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

    def popen(self, name, argv, **kwargs):
        process = subprocess.Popen(argv, **kwargs)
        with self.lock:
            self.items.append((name, process))
        return process

    def forget(self, process):
        with self.lock:
            self.items = [(n, p) for (n, p) in self.items if p is not process]

    def tracked_pids(self):
        with self.lock:
            return {p.pid for (_, p) in self.items if p.poll() is None}

    def reap_orphans(self):
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

    def end_all(self):
        with self.lock:
            items = list(reversed(self.items))
            self.items = []
        for name, process in items:
            if process.poll() is not None:
                continue
            try:
                # Daemons get SIGTERM first, so that they end their steps; then SIGKILL.
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=8)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


def step_processes(root):
    """Processes started by a Slipway step of one of our apps (their environment names a deploy_to under root)."""
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
        variables = dict(
            item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
        found.append({
            "pid": int(name), "cmdline": cmdline,
            "app": variables.get(b"SLIPWAY_APP", b"").decode(),
            "deployment": int(variables.get(b"SLIPWAY_DEPLOYMENT", b"0") or 0),
        })
    return found


def child_pids(pid):
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


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# ----------------------------------------------------------------------------------------------------------------
# Git repositories made here


class Repo:
    """A working repository and the bare repository it pushes to."""

    def __init__(self, ctx, name, files, bare_dir):
        self.ctx = ctx
        self.name = name
        self.work = os.path.join(ctx.root, "work", name)
        self.bare = os.path.join(bare_dir, name + ".git")
        self.rng = random.Random("%s-%s" % (ctx.seed, name))
        self.counter = 0
        self.trees = {}
        os.makedirs(self.work)
        self.git("init", "-q", "-b", "main")
        for i in range(files):
            path = os.path.join(self.work, "src", "m%02d" % (i % 20), "f%04d.txt" % i)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(self.text(i))
        os.makedirs(os.path.join(self.work, "bin"))
        tool = os.path.join(self.work, "bin", "tool.sh")
        with open(tool, "w") as f:
            f.write("#!/bin/sh\necho tool\n")
        os.chmod(tool, 0o755)
        os.symlink("src/m00/f0000.txt", os.path.join(self.work, "first-file"))
        with open(os.path.join(self.work, "VERSION"), "w") as f:
            f.write("0\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "initial tree of %d files" % files)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", self.bare], check=True,
                       env=ctx.git_env, capture_output=True)
        self.push(hook=False)

    def text(self, i):
        words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
        lines = [" ".join(self.rng.choice(words) for _ in range(12)) for _ in range(self.rng.randint(8, 30))]
        return "file %d\n%s\n" % (i, "\n".join(lines))

    def git(self, *args, check=True):
        result = subprocess.run(["git", *args], cwd=self.work, env=self.ctx.git_env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise HarnessError("git %s failed: %s" % (" ".join(args), result.stderr.strip()))
        return result.stdout.strip()

    def commit(self, extra=None, remove=()):
        """A new commit on main that changes VERSION and a few files; extra: {path: content}; remove: paths."""
        self.counter += 1
        with open(os.path.join(self.work, "VERSION"), "w") as f:
            f.write("%d\n" % self.counter)
        sources = sorted(
            os.path.join(d, n) for d, _, names in os.walk(os.path.join(self.work, "src")) for n in names)
        for path in self.rng.sample(sources, min(3, len(sources))):
            with open(path, "a") as f:
                f.write("change %d\n" % self.counter)
        if self.rng.random() < 0.3:
            path = os.path.join(self.work, "src", "added", "a%04d.txt" % self.counter)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(self.text(10000 + self.counter))
        added = [p for p in sources if "/src/added/" in p]
        if added and self.rng.random() < 0.3:
            os.unlink(self.rng.choice(added))
        extra = extra or {}
        remove = tuple(remove) + tuple(m for m in ("BUILD_SLEEP", "HEALTH_SLEEP", "FILL_DISK") if m not in extra)
        for path, content in extra.items():
            with open(os.path.join(self.work, path), "w") as f:
                f.write(content)
        for path in remove:
            full = os.path.join(self.work, path)
            if os.path.exists(full):
                os.unlink(full)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "change %d" % self.counter)
        return self.git("rev-parse", "HEAD")

    def head(self):
        return self.git("rev-parse", "HEAD")

    def push(self, hook, timeout=120):
        """Pushes main. Without hook, the bare repository's hooks are switched off for this push."""
        argv = ["git", "push", "-q", self.bare, "main"]
        if not hook:
            argv = ["git", "push", "-q", "--receive-pack=git -c core.hooksPath=/dev/null receive-pack",
                    self.bare, "main"]
        result = subprocess.run(argv, cwd=self.work, env=self.ctx.git_env, capture_output=True, text=True,
                                timeout=timeout)
        if not hook and result.returncode != 0:
            raise HarnessError("git push failed: %s" % result.stderr.strip())
        return result.returncode, result.stdout + result.stderr

    def push_in_background(self, output_path):
        out = open(output_path, "w")
        process = self.ctx.procs.popen(
            "git push", ["git", "push", self.bare, "main"], cwd=self.work, env=self.ctx.git_env,
            stdout=out, stderr=subprocess.STDOUT)
        out.close()
        return process

    def tree(self, commit):
        """{path: (mode, blob sha)} of a commit, read from the working repository (it has every commit)."""
        if commit not in self.trees:
            result = subprocess.run(["git", "ls-tree", "-r", "-z", "--full-tree", commit], cwd=self.work,
                                    env=self.ctx.git_env, capture_output=True)
            if result.returncode != 0:
                raise HarnessError("git ls-tree %s failed: %s" % (commit, result.stderr.decode().strip()))
            entries = {}
            for record in result.stdout.split(b"\0"):
                if not record:
                    continue
                meta, path = record.split(b"\t", 1)
                mode, kind, sha = meta.decode().split()
                entries[path.decode()] = (mode, sha)
            self.trees[commit] = entries
        return self.trees[commit]


def check_tree(directory, entries, allowed_extra=("_build",)):
    """Problems with a release directory compared with the commit's tree; build output under allowed_extra."""
    problems = []
    for path, (mode, sha) in entries.items():
        full = os.path.join(directory, path)
        try:
            st = os.lstat(full)
        except OSError:
            problems.append("missing %s" % path)
            continue
        if mode == "120000":
            if not os.path.islink(full):
                problems.append("%s is not a symlink" % path)
            elif blob_sha(os.readlink(full).encode()) != sha:
                problems.append("symlink %s has the wrong target" % path)
        elif mode in ("100644", "100755"):
            if not os.path.isfile(full) or os.path.islink(full):
                problems.append("%s is not a regular file" % path)
                continue
            with open(full, "rb") as f:
                if blob_sha(f.read()) != sha:
                    problems.append("%s differs from the commit" % path)
            if (mode == "100755") != bool(st.st_mode & 0o100):
                problems.append("%s has the wrong run bit" % path)
    for base, dirs, names in os.walk(directory):
        relative_base = os.path.relpath(base, directory)
        if relative_base == ".":
            relative_base = ""
        if relative_base.split(os.sep)[0] in allowed_extra:
            continue
        for name in names + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            relative = os.path.join(relative_base, name) if relative_base else name
            if relative.split(os.sep)[0] in allowed_extra:
                continue
            if relative not in entries:
                problems.append("extra file %s" % relative)
    return problems


# ----------------------------------------------------------------------------------------------------------------
# A slow TCP proxy in front of `git daemon`, so that a network fetch takes long enough to be killed in the middle


class SlowProxy:
    def __init__(self, target_port, delay=0.02, chunk=1024):
        self.target_port = target_port
        self.delay = delay
        self.chunk = chunk
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.closed = False
        self.sockets = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            threading.Thread(target=self.pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client), daemon=True).start()

    def pump(self, source, sink):
        try:
            while True:
                data = source.recv(self.chunk)
                if not data:
                    break
                time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        for s in [self.server] + self.sockets:
            try:
                s.close()
            except OSError:
                pass


# ----------------------------------------------------------------------------------------------------------------
# The daemon


class Events:
    """Follows /api/v1/events of one daemon instance in a thread."""

    def __init__(self, port):
        self.port = port
        self.cond = threading.Condition()
        self.items = []  # (time ms, deployment dict)
        self.ready = threading.Event()
        self.ended = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise HarnessError("the event stream of port %d did not open" % port)

    def run(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=None)
            conn.request("GET", "/api/v1/events", headers={"Accept": "text/event-stream"})
            response = conn.getresponse()
            self.ready.set()
            while True:
                line = response.readline()
                if not line:
                    break
                line = line.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("data:"):
                    try:
                        deployment = json.loads(line[5:])
                    except ValueError:
                        continue
                    with self.cond:
                        self.items.append((now_ms(), deployment))
                        self.cond.notify_all()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            self.ready.set()
            with self.cond:
                self.ended = True
                self.cond.notify_all()

    def wait_for(self, predicate, timeout, abort=lambda: False):
        """The first event (time, deployment) that predicate accepts, or None on timeout, abort or end of stream."""
        deadline = time.monotonic() + timeout
        index = 0
        with self.cond:
            while True:
                if abort():
                    return None
                while index < len(self.items):
                    item = self.items[index]
                    index += 1
                    verdict = predicate(item[1])
                    if verdict:
                        return item
                if self.ended:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(min(remaining, 0.05))


class Daemon:
    def __init__(self, ctx, name, pipelines, state):
        self.ctx = ctx
        self.name = name
        self.pipelines = pipelines
        self.state = state
        self.process = None
        self.port = None
        self.events = None
        self.starts = 0
        self.log_paths = []

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        """Starts `slipway serve` on the same state (and the same port when it can); returns when it listens."""
        for attempt in range(3):
            self.starts += 1
            log_path = os.path.join(self.ctx.root, "logs", "%s-%03d.log" % (self.name, self.starts))
            self.log_paths.append(log_path)
            port = self.port if (self.port and attempt == 0) else 0
            out = open(log_path, "w")
            self.process = self.ctx.procs.popen(
                "slipway serve", [self.ctx.slipway, "serve", "--pipelines", self.pipelines, "--state", self.state,
                                  "--port", str(port), "--shutdown-grace", "3s"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=self.ctx.daemon_env)
            out.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with open(log_path, errors="replace") as f:
                    text = f.read()
                match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
                if match:
                    changed = self.port != int(match.group(1))
                    self.port = int(match.group(1))
                    self.events = Events(self.port)
                    return changed
                if self.process.poll() is not None:
                    break
                self.ctx.procs.reap_orphans()
                time.sleep(0.01)
            tail = open(log_path, errors="replace").read()[-2000:]
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.ctx.procs.forget(self.process)
            if attempt == 2:
                raise HarnessError("slipway serve did not start (log %s):\n%s" % (log_path, tail))
            self.port = None
        return True

    def kill9(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.ctx.procs.forget(self.process)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.ctx.procs.forget(self.process)

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def api(self, method, path, body=None, timeout=30.0):
        return http_json(self.port, method, path, body, timeout)

    def get(self, path):
        status, answer = self.api("GET", path)
        if status != 200:
            raise HarnessError("GET %s answered %d: %s" % (path, status, error_message(answer)))
        return answer

    def log_text(self, last=False):
        paths = self.log_paths[-1:] if last else self.log_paths
        return "".join(open(p, errors="replace").read() for p in paths if os.path.exists(p))

    def store(self, copy=False):
        """A read-only connection to the store; with copy, to a copy of it (for a store whose daemon was killed)."""
        path = os.path.join(self.state, "slipway.sqlite")
        if copy:
            target = os.path.join(self.ctx.root, "store-copy")
            shutil.rmtree(target, ignore_errors=True)
            os.makedirs(target)
            for suffix in ("", "-wal"):
                if os.path.exists(path + suffix):
                    shutil.copyfile(path + suffix, os.path.join(target, "slipway.sqlite" + suffix))
            path = os.path.join(target, "slipway.sqlite")
            connection = sqlite3.connect(path, timeout=10)
        else:
            connection = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
        connection.row_factory = sqlite3.Row
        return connection

    def query(self, sql, args=(), copy=False):
        connection = self.store(copy)
        try:
            return [dict(row) for row in connection.execute(sql, args).fetchall()]
        finally:
            connection.close()

    def wait_deployment(self, deployment_id, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.get("/api/v1/deployments/%d" % deployment_id)
            if answer["status"] in FINISHED:
                return answer
            time.sleep(0.05)
        raise HarnessError("deployment %d did not finish in %ds" % (deployment_id, timeout))

    def wait_idle(self, apps, timeout=60):
        """Waits until no deployment of these apps is queued or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = False
            for app in apps:
                answer = self.get("/api/v1/apps/%s" % app)
                last = answer.get("last_deployment") or {}
                if answer.get("queued") or last.get("status") in ("queued", "running"):
                    busy = True
            if not busy:
                rows = self.query(
                    "SELECT id FROM deployment WHERE status IN ('queued','running') AND app IN (%s)"
                    % ",".join("?" * len(apps)), tuple(apps))
                if not rows:
                    return
            time.sleep(0.05)
        raise HarnessError("%s did not become idle in %ds" % (", ".join(apps), timeout))

    def max_deployment_id(self):
        rows = self.query("SELECT MAX(id) AS m FROM deployment")
        return rows[0]["m"] or 0


# ----------------------------------------------------------------------------------------------------------------
# The invariants


class App:
    def __init__(self, name, deploy_to, repo, build_steps, keep):
        self.name = name
        self.deploy_to = deploy_to
        self.repo = repo
        self.build_steps = build_steps
        self.keep = keep


# Disagreements seen right after a deployment ended that were gone 100-500 ms later (for example: a deployment is
# reported finished before it has pruned old releases). They are reported as notes, not violations.
TRANSIENTS = []


def check_app(daemon, app, idle=True, after_success=False, settle_tries=5):
    """Violations of the invariants for one app, as strings, once they have had up to 0.5 s to settle."""
    first = None
    for attempt in range(settle_tries):
        problems = check_app_once(daemon, app, idle, after_success)
        if not problems:
            if first:
                TRANSIENTS.append("%s: %s (gone after %d ms)" % (app.name, "; ".join(first), attempt * 100))
            return []
        if first is None:
            first = problems
        time.sleep(0.1)
    return problems


def check_app_once(daemon, app, idle=True, after_success=False):
    """Violations of the invariants for one app, as strings. The daemon must be up (and idle when idle)."""
    problems = []
    current_path = os.path.join(app.deploy_to, "current")
    target = read_link(current_path)
    live = link_release(target)
    summary = daemon.get("/api/v1/apps/%s" % app.name)
    releases = daemon.get("/api/v1/apps/%s/releases" % app.name)["releases"]
    api_current = (summary.get("current") or {}).get("id")
    if target is None:
        if api_current is not None:
            problems.append("there is no current link, but the API says release %s is live" % api_current)
    else:
        if live is None:
            problems.append("current -> %r is not a relative link to releases/<id>" % target)
        elif not os.path.isdir(os.path.join(app.deploy_to, "releases", str(live))):
            problems.append("current -> %s, which does not exist" % target)
        if api_current != live:
            problems.append("the API says release %s is live; the current link says %s" % (api_current, live))
    state = daemon.query("SELECT live_release FROM app_state WHERE app = ?", (app.name,))
    store_live = state[0]["live_release"] if state else None
    if target is not None and store_live != live:
        problems.append("app_state.live_release is %s; the current link says %s" % (store_live, live))

    # The live release: known to the store, built by a deployment whose build, test and migrate all succeeded,
    # complete on disk.
    if live is not None and os.path.isdir(os.path.join(app.deploy_to, "releases", str(live))):
        rows = daemon.query("SELECT * FROM [release] WHERE id = ?", (live,))
        if not rows:
            problems.append("live release %d is not in the store's release table" % live)
        else:
            release = rows[0]
            if release["app"] != app.name:
                problems.append("live release %d belongs to %s" % (live, release["app"]))
            if release["removed_at"] is not None:
                problems.append("live release %d is marked removed in the store" % live)
            steps = daemon.query("SELECT phase, name, status FROM step WHERE deployment_id = ?", (live,))
            for phase, count in app.build_steps.items():
                done = [s for s in steps if s["phase"] == phase and s["status"] == "succeeded"]
                if len(done) != count:
                    problems.append(
                        "live release %d: its deployment never finished its %s phase (%d of %d steps succeeded: %s)"
                        % (live, phase, len(done), count,
                           ", ".join("%s=%s" % (s["name"][:30], s["status"]) for s in steps if s["phase"] == phase)
                           or "no step records"))
            deployment = daemon.query("SELECT [commit] FROM deployment WHERE id = ?", (live,))
            if deployment and deployment[0]["commit"] != release["commit"]:
                problems.append("live release %d records commit %s but its deployment built %s"
                                % (live, release["commit"][:10], deployment[0]["commit"][:10]))
            directory = os.path.join(app.deploy_to, "releases", str(live))
            tree = check_tree(directory, app.repo.tree(release["commit"]))
            if tree:
                problems.append("live release %d is incomplete: %s%s" % (live, "; ".join(tree[:5]),
                                                                         " ..." if len(tree) > 5 else ""))
            if not os.path.exists(os.path.join(directory, "_build", "complete")):
                problems.append("live release %d has no build output (_build/complete)" % live)

    # The store and the disk agree.
    kept = {r["id"]: r for r in releases}
    active = [r["id"] for r in releases if r.get("active")]
    if live is not None and active != [live]:
        problems.append("releases marked active in the API: %s; the live one is %s" % (active, live))
    releases_dir = os.path.join(app.deploy_to, "releases")
    on_disk = []
    for name in (os.listdir(releases_dir) if os.path.isdir(releases_dir) else []):
        if not name.isdigit():
            problems.append("stray entry releases/%s" % name)
            continue
        on_disk.append(int(name))
    for rid in sorted(on_disk):
        if rid not in kept and rid != live:
            problems.append("releases/%d is on disk but is neither a kept release nor the live one" % rid)
    for rid in sorted(kept):
        if rid not in on_disk:
            problems.append("the API lists kept release %d, but releases/%d is not on disk" % (rid, rid))
        elif rid != live:
            tree = check_tree(os.path.join(releases_dir, str(rid)), app.repo.tree(kept[rid]["commit"]))
            if tree:
                problems.append("kept release %d (a rollback target) is incomplete: %s" % (rid, "; ".join(tree[:5])))
    for name in (os.listdir(app.deploy_to) if os.path.isdir(app.deploy_to) else []):
        if name.startswith(LEFTOVER_PREFIXES):
            problems.append("leftover %s in deploy_to" % name)

    if idle:
        stuck = daemon.query(
            "SELECT id, status, phase FROM deployment WHERE app = ? AND status IN ('running', 'queued')", (app.name,))
        for row in stuck:
            problems.append("deployment %d is still %s (phase %s)" % (row["id"], row["status"], row["phase"]))
        steps = daemon.query(
            "SELECT s.id, s.deployment_id, s.name, s.process_group, d.status FROM step s "
            "JOIN deployment d ON d.id = s.deployment_id WHERE d.app = ? AND s.status = 'running'", (app.name,))
        for row in steps:
            problems.append("step %d (%s) of deployment %d, which is %s, is still running in the store (process "
                            "group %s)" % (row["id"], row["name"][:30], row["deployment_id"], row["status"],
                                           row["process_group"]))

    if after_success:
        succeeded = daemon.query(
            "SELECT id FROM [release] WHERE app = ? AND succeeded = 1 AND removed_at IS NULL ORDER BY id DESC",
            (app.name,))
        allowed = {r["id"] for r in succeeded[:app.keep]} | ({live} if live is not None else set())
        extra = sorted(set(kept) - allowed)
        if extra:
            problems.append("retention: releases %s are kept beyond the newest %d succeeded and the live one"
                            % (extra, app.keep))
    return problems


# ----------------------------------------------------------------------------------------------------------------
# The run


class Context:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.slipway = os.path.abspath(args.slipway)
        self.root = tempfile.mkdtemp(prefix="slipway-faults-", dir="/tmp")
        self.procs = Processes()
        self.mounts = []
        for sub in ("work", "git", "logs", "home"):
            os.makedirs(os.path.join(self.root, sub))
        self.git_env = git_env(os.path.join(self.root, "home"))
        self.daemon_env = dict(os.environ, HOME=os.path.join(self.root, "home"), LANG="C")
        self.daemon_env.pop("SLIPWAY_TOKEN", None)
        self.git_daemon = None
        self.git_port = None
        self.proxy = None
        self.violations = []  # (part, text)

    def violation(self, part, text):
        self.violations.append((part, text))
        log("  VIOLATION [%s] %s" % (part, text))

    def start_git_daemon(self):
        base = os.path.join(self.root, "git")
        for attempt in range(5):
            port = free_port()
            process = self.procs.popen(
                "git daemon", ["git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1",
                               "--port=%d" % port, "--base-path=" + base, base],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.root, "logs", "git-daemon.log"), "a"),
                env=self.git_env, start_new_session=True)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    self.git_daemon, self.git_port = process, port
                    return
                except OSError:
                    time.sleep(0.05)
            if process.poll() is None:
                process.kill()
            process.wait()
            self.procs.forget(process)
        raise HarnessError("git daemon did not start")

    def mount_tmpfs(self, directory, size="16m"):
        os.makedirs(directory, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", directory],
                                capture_output=True, text=True)
        if result.returncode != 0:
            return (result.stderr or result.stdout).strip() or "mount exited %d" % result.returncode
        self.mounts.append(directory)
        return None

    def unmount(self, directory):
        if directory not in self.mounts:
            return
        for _ in range(20):
            if subprocess.run(["umount", directory], capture_output=True).returncode == 0:
                self.mounts.remove(directory)
                return
            time.sleep(0.2)
        subprocess.run(["umount", "-l", directory], capture_output=True)
        self.mounts.remove(directory)

    def cleanup(self, keep):
        self.procs.end_all()
        if self.proxy:
            self.proxy.close()
        leftovers = step_processes(self.root)
        kill_pids([p["pid"] for p in leftovers])
        time.sleep(0.1)
        self.procs.reap_orphans()
        for directory in list(self.mounts):
            self.unmount(directory)
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


def write_pipeline(path, text):
    with open(path, "w") as f:
        f.write(text)


WEB_PIPELINE = """\
# The crash app: a few hundred files, steps of some tens of ms, a health command.
repository: {repository}
branch: main
deploy_to: {deploy_to}
keep_releases: 3
build:
  - name: compile
    run: sleep 0.03; mkdir -p _build && cp VERSION _build/version && if [ -f BUILD_SLEEP ]; then sleep "$(cat BUILD_SLEEP)"; fi
  - name: bundle
    run: sleep 0.02; ls -R src > _build/listing && echo ok > _build/complete
test:
  - name: unit
    run: sleep 0.03; test -f _build/complete
migrate:
  - name: migrate
    run: sleep 0.03; echo "$SLIPWAY_DEPLOYMENT" >> "$SLIPWAY_SHARED_DIR/migrations"
activate:
  - name: restart
    run: sleep 0.03; echo "$SLIPWAY_DEPLOYMENT" > "$SLIPWAY_SHARED_DIR/live.tmp" && mv "$SLIPWAY_SHARED_DIR/live.tmp" "$SLIPWAY_SHARED_DIR/live"
health:
  command: sleep 0.03; if [ -f HEALTH_SLEEP ]; then sleep "$(cat HEALTH_SLEEP)"; fi; test -f _build/complete && test "$(cat "$SLIPWAY_SHARED_DIR/live")" = "$SLIPWAY_DEPLOYMENT"
  timeout: 10s
  interval: 100ms
rollback:
  - name: migrate down
    run: sleep 0.03
"""


class CrashBench:
    """Part 1: SIGKILL at chosen phases of deploys and rollbacks, restart, check."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.rng = ctx.rng
        self.hits = collections.Counter()
        self.hits_by_kind = collections.Counter()
        self.rounds = []
        self.push_checks = 0
        self.push_failures = 0
        self.kills = 0
        self.fetch_ms = None
        self.max_id = 0
        self.build_rounds = 0

    def setup(self):
        ctx = self.ctx
        log("setting up the crash app (repository of %d files)..." % ctx.args.files)
        self.repo = Repo(ctx, "app", ctx.args.files, os.path.join(ctx.root, "git"))
        ctx.start_git_daemon()
        ctx.proxy = SlowProxy(ctx.git_port, delay=0.02, chunk=1024)
        self.pipelines = os.path.join(ctx.root, "crash", "pipelines")
        os.makedirs(self.pipelines)
        deploy_root = os.path.join(ctx.root, "crash", "deploy")
        self.web = App("web", os.path.join(deploy_root, "web"), self.repo, WEB_BUILD_STEPS, 3)
        self.net = App("net", os.path.join(deploy_root, "net"), self.repo, WEB_BUILD_STEPS, 3)
        write_pipeline(os.path.join(self.pipelines, "web.yml"),
                       WEB_PIPELINE.format(repository=self.repo.bare, deploy_to=self.web.deploy_to))
        write_pipeline(os.path.join(self.pipelines, "net.yml"), WEB_PIPELINE.format(
            repository="git://127.0.0.1:%d/app.git" % ctx.proxy.port, deploy_to=self.net.deploy_to))
        self.daemon = Daemon(ctx, "crash", self.pipelines, os.path.join(ctx.root, "crash", "state"))
        self.daemon.start()
        self.install_hook()
        # Three releases of each app to start with, so that rollbacks have kept releases to go to.
        fetches = []
        for i in range(3):
            self.push_check(check=False)
            # The first (whole) clone goes through at full speed; every later fetch is slowed down.
            ctx.proxy.delay = 0.0 if i == 0 else 0.02
            fetches.append(self.notify_net(wait=True)[1])
        self.fetch_ms = max(60.0, sorted(fetches[1:])[-1])
        log("setup done: web and net live; a watcher fetch over the slow git:// proxy takes about %.0f ms"
            % self.fetch_ms)

    def install_hook(self):
        result = subprocess.run(
            [self.ctx.slipway, "hook", "install", self.repo.bare, "--app", "web", "--server", self.daemon.url,
             "--force"], capture_output=True, text=True, env=self.ctx.daemon_env)
        if result.returncode != 0:
            raise HarnessError("slipway hook install failed: %s" % (result.stderr or result.stdout))

    def restart(self):
        if self.daemon.start():
            self.install_hook()

    def notify_net(self, wait, strict=True):
        """POST /hooks/push for the git:// app, as its hook would; returns (deployment or None, ms). Not strict:
        an error answer is returned as (None, "HTTP <status>: <message>")."""
        head = self.repo.head()
        start = now_ms()
        status, answer = self.daemon.api("POST", "/hooks/push", {
            "app": "net", "ref": "refs/heads/main", "before": ZERO_SHA, "after": head})
        elapsed = now_ms() - start
        if status != 202:
            if not strict:
                return None, "HTTP %d: %s" % (status, error_message(answer))
            raise HarnessError("POST /hooks/push for net answered %d: %s" % (status, error_message(answer)))
        deployments = answer.get("deployments") or []
        if wait and deployments:
            final = self.daemon.wait_deployment(deployments[0]["id"])
            if final["status"] != "succeeded":
                raise HarnessError("setup deployment %d of net %s: %s" % (final["id"], final["status"], final["error"]))
        return (deployments[0] if deployments else None), elapsed

    def push_check(self, check=True, round_label="setup"):
        """The next push deploys: a new commit, a real `git push` through the hook, and the same for net."""
        self.push_checks += 1 if check else 0
        head = self.repo.commit()
        try:
            rc, output = self.repo.push(hook=True)
        except subprocess.TimeoutExpired:
            rc, output = -1, "git push did not finish in 120 s"
        match = re.findall(r"deployment (\d+) (succeeded|failed|interrupted|cancelled)", output)
        answer = self.daemon.get("/api/v1/apps/web")
        current = answer.get("current") or {}
        ok = bool(match) and match[-1][1] == "succeeded" and current.get("commit") == head
        if not ok:
            text = ("web: a git push of %s after the restart did not deploy it (push exit %d; current is %s; "
                    "push output: %s)" % (head[:10], rc, current.get("commit", "none")[:10],
                                          " | ".join(output.strip().splitlines()[-6:])))
            if check:
                self.push_failures += 1
                self.ctx.violation("crash", "%s: %s" % (round_label, text))
            else:
                raise HarnessError(text)
        if check:
            deployment, why = self.notify_net(wait=False, strict=False)
            if deployment is None:
                self.push_failures += 1
                self.ctx.violation("crash", "%s: net: POST /hooks/push for %s started no deployment (%s)"
                                   % (round_label, head[:10], why))
            else:
                final = self.daemon.wait_deployment(deployment["id"])
                if final["status"] != "succeeded":
                    self.push_failures += 1
                    self.ctx.violation("crash", "%s: net: the push of %s did not deploy: deployment %d %s: %s"
                                       % (round_label, head[:10], final["id"], final["status"], final["error"]))
            self.daemon.wait_idle(["web", "net"])
            for app in (self.web, self.net):
                for problem in check_app(self.daemon, app, after_success=True):
                    self.ctx.violation("crash", "%s, after the push: %s: %s" % (round_label, app.name, problem))

    def rollback_body(self):
        """A rollback request for web to a kept release, or None when there is none (then a deploy is made)."""
        releases = self.daemon.get("/api/v1/apps/web/releases")["releases"]
        live = [r for r in releases if r["active"]]
        candidates = [r for r in releases if not r["active"]]
        if not candidates or not live:
            return None
        choice = self.rng.random()
        succeeded = {r["id"] for r in self.daemon.query(
            "SELECT id FROM [release] WHERE app = 'web' AND succeeded = 1 AND removed_at IS NULL")}
        older = [r for r in candidates if r["id"] < live[0]["id"] and r["id"] in succeeded]
        if choice < 0.35 and older:
            return {}
        target = self.rng.choice(candidates)
        if choice < 0.55 and len({r["commit"] for r in releases if r["commit"] == target["commit"]}) == 1:
            return {"to": target["commit"][:10]}
        return {"to": target["id"]}

    def run_round(self, number, total, kind, phase):
        ctx, daemon, rng = self.ctx, self.daemon, self.rng
        label = "kill %d/%d" % (number, total)
        app = self.net if phase == "mirror-fetch" else self.web
        daemon.wait_idle(["web", "net"])
        body = None
        if kind == "rollback":
            body = self.rollback_body()
            if body is None:
                self.push_check(check=False)
                body = self.rollback_body()
        before_target = read_link(os.path.join(app.deploy_to, "current"))
        before_link = link_release(before_target)
        base_id = daemon.max_deployment_id()
        # Build rounds and deploy health rounds make that phase last 3 s, so that a process of the killed step is
        # still alive at the restart: recovery must end it. Every other build round (the first one included) kills
        # the moment the step's first process exists, before the store may have learnt its process group.
        build_sleep = phase == "build"
        if build_sleep:
            self.build_rounds += 1
        at_spawn = build_sleep and self.build_rounds % 2 == 1
        health_sleep = kind == "deploy" and phase == "health"
        extra = {"BUILD_SLEEP": "3\n"} if build_sleep else {"HEALTH_SLEEP": "3\n"} if health_sleep else None
        # Half the switch rounds watch the current link itself and kill the moment it moves: the rename is done,
        # the store has not been told yet.
        watch_link = phase == "switch" and rng.random() < 0.5
        trigger = None
        background = None
        responses = []

        if kind == "deploy":
            self.repo.commit(extra=extra)
            if app is self.net:
                trigger = "hooks/push"
            else:
                trigger = rng.choice(["hooks/push", "manual", "git push"])
            if trigger == "git push":
                background = self.repo.push_in_background(
                    os.path.join(ctx.root, "logs", "push-round-%d.log" % number))
            else:
                self.repo.push(hook=False)
        else:
            trigger = "rollback %s" % json.dumps(body)

        def send():
            try:
                if trigger == "hooks/push":
                    responses.append(daemon.api("POST", "/hooks/push", {
                        "app": app.name, "ref": "refs/heads/main", "before": ZERO_SHA, "after": self.repo.head()},
                        timeout=20))
                elif trigger == "manual":
                    responses.append(daemon.api("POST", "/api/v1/apps/web/deploy", {}, timeout=20))
                elif kind == "rollback":
                    responses.append(daemon.api("POST", "/api/v1/apps/web/rollback", body, timeout=20))
            except (OSError, http.client.HTTPException) as error:
                responses.append((None, str(error)))
            if responses and responses[-1][0] not in (None, 202):
                refused.set()

        refused = threading.Event()
        sender = threading.Thread(target=send, daemon=True)
        started = now_ms()
        sender.start()
        delay = 0.0
        seen = None
        if phase == "mirror-fetch":
            # The watcher fetches over git:// (through the slow proxy) inside the request, before any deployment
            # exists: kill somewhere in that fetch.
            delay = rng.uniform(0.0, self.fetch_ms * 1.1)
            time.sleep(delay / 1000.0)
        elif watch_link:
            before_switch = "migrate" if kind == "deploy" else "fetch"

            def wanted(d):
                if d.get("app") != app.name or d.get("id", 0) <= base_id or d.get("kind") != kind:
                    return False
                return (d.get("status") == "running" and d.get("phase") == before_switch) or d.get("status") in FINISHED
            seen = daemon.events.wait_for(wanted, timeout=30, abort=refused.is_set)
            link_path = os.path.join(app.deploy_to, "current")
            deadline = time.monotonic() + (10 if seen and seen[1].get("status") == "running" else 0)
            spins = 0
            while read_link(link_path) == before_target:
                spins += 1
                if spins % 2000 == 0 and time.monotonic() > deadline:
                    break
            delay = 0.0
            trigger += " (watching the link)"
        else:
            def wanted(d):
                if d.get("app") != app.name or d.get("id", 0) <= base_id or d.get("kind") != kind:
                    return False
                if d.get("status") == "running" and d.get("phase") == phase:
                    return True
                return d.get("status") in FINISHED  # it ended without us seeing the phase: kill anyway
            seen = daemon.events.wait_for(wanted, timeout=30, abort=refused.is_set)
            if refused.is_set():
                log("  note: the trigger was refused: %s" % (responses[-1],))
            low, high = DELAYS_MS[phase]
            delay = rng.uniform(low, high)
            if (at_spawn or health_sleep) and seen is not None and seen[1].get("status") == "running":
                # Wait for the step's (or the health command's) first process; count the delay from there.
                if at_spawn:
                    trigger += " (at the step's start)"
                    delay = 0.0
                deadline = time.monotonic() + 5
                while not child_pids(daemon.process.pid) and time.monotonic() < deadline:
                    pass
                seen = (now_ms(), seen[1])
            if seen is not None:
                remaining = seen[0] + delay - now_ms()
                if remaining > 0:
                    time.sleep(remaining / 1000.0)
        killed_at = now_ms()
        daemon.kill9()
        self.kills += 1
        sender.join(10)
        if background is not None:
            try:
                background.wait(timeout=20)
            except subprocess.TimeoutExpired:
                background.kill()
                background.wait()
            ctx.procs.forget(background)

        # What the kill hit, from the store as the daemon left it.
        new = daemon.query("SELECT id, kind, status, phase, [commit] FROM deployment WHERE id > ? AND app = ? "
                           "ORDER BY id", (base_id, app.name), copy=True)
        running_steps = daemon.query(
            "SELECT deployment_id, phase, name, process_group FROM step WHERE status = 'running' AND deployment_id > ?",
            (base_id,), copy=True)
        link_at_kill = link_release(read_link(os.path.join(app.deploy_to, "current")))
        if not new:
            hit = "fetch (watcher, before queueing)" if phase == "mirror-fetch" else "before the deployment was queued"
            hit_detail = hit
            hit_kind = "watcher" if phase == "mirror-fetch" else kind
            victim = None
        else:
            victim = new[-1]
            hit_kind = victim["kind"]
            if victim["status"] == "running":
                hit = victim["phase"]
            elif victim["status"] == "queued":
                hit = "queued"
            else:
                hit = "after it ended (%s)" % victim["status"]
            hit_detail = hit
            step = [s for s in running_steps if s["deployment_id"] == victim["id"]]
            if step:
                hit_detail += " (step %s, process group %s)" % (step[0]["name"][:24], step[0]["process_group"])
        self.hits[hit] += 1
        self.hits_by_kind["%s:%s" % (hit_kind, hit)] += 1
        problems = []
        if victim is not None and victim["id"] <= self.max_id:
            problems.append("deployment id %d is not greater than an earlier one (%d)" % (victim["id"], self.max_id))
        if victim is not None:
            self.max_id = max(self.max_id, victim["id"])
            allowed = {before_link, victim["id"]}
            if kind == "rollback" and victim["kind"] == "rollback":
                target = daemon.query("SELECT target_release FROM deployment WHERE id = ?", (victim["id"],),
                                      copy=True)
                allowed = {before_link, target[0]["target_release"] if target else None}
            if link_at_kill not in allowed:
                problems.append("at the kill, current -> releases/%s: neither the release live before (%s) nor "
                                "the one deployment %d was making live" % (link_at_kill, before_link, victim["id"]))

        # Restart on the same state: recovery runs before the daemon listens.
        restart_started = now_ms()
        self.restart()
        restart_ms = now_ms() - restart_started
        link_after = link_release(read_link(os.path.join(app.deploy_to, "current")))
        if link_after != link_at_kill:
            problems.append("start-up recovery moved current from releases/%s to releases/%s"
                            % (link_at_kill, link_after))
        if victim is not None and victim["status"] == "running":
            leftover = [p for p in step_processes(ctx.root) if p["deployment"] == victim["id"]]
            if leftover:
                problems.append(
                    "step processes of interrupted deployment %d outlived the restart: %s (the store had process "
                    "group %s for the running step)" % (
                        victim["id"], "; ".join("pid %d: %s" % (p["pid"], p["cmdline"][:60]) for p in leftover),
                        ", ".join(str(s["process_group"]) for s in running_steps
                                  if s["deployment_id"] == victim["id"]) or "none"))
                kill_pids([p["pid"] for p in leftover])
            after = daemon.get("/api/v1/deployments/%d" % victim["id"])
            if after["status"] != "interrupted":
                problems.append("deployment %d was running at the kill; after the restart it is %s, not interrupted"
                                % (victim["id"], after["status"]))
        daemon.wait_idle(["web", "net"])
        ctx.procs.reap_orphans()
        if victim is not None and victim["status"] == "queued":
            after = daemon.get("/api/v1/deployments/%d" % victim["id"])
            if after["status"] != "succeeded":
                problems.append("deployment %d was queued at the kill; after the restart it ended %s: %s"
                                % (victim["id"], after["status"], after.get("error")))

        # A notice lost with the crash: the same push again must deploy (its head was never deployed).
        if phase == "mirror-fetch" and victim is None:
            deployment, why = self.notify_net(wait=False, strict=False)
            if deployment is None and isinstance(why, str):
                problems.append("the crash hit the watcher's fetch; sending the same push again after the restart "
                                "fails: %s" % why)
            elif deployment is None:
                seen_head = daemon.query("SELECT last_seen_head FROM app_state WHERE app = 'net'")
                problems.append(
                    "the crash hit the watcher's fetch before any deployment was queued; sending the same push "
                    "again after the restart deploys nothing (last_seen_head %s = the pushed head): the push is lost"
                    % ((seen_head[0]["last_seen_head"] or "")[:10] if seen_head else "?"))
            else:
                final = daemon.wait_deployment(deployment["id"])
                if final["status"] != "succeeded":
                    problems.append("the push sent again after the restart: deployment %d %s: %s"
                                    % (final["id"], final["status"], final["error"]))
            daemon.wait_idle(["web", "net"])

        for each in (self.web, self.net):
            for problem in check_app(daemon, each):
                problems.append("%s: %s" % (each.name, problem))
        for problem in problems:
            ctx.violation("crash", "%s (target %s:%s, hit %s): %s" % (label, kind, phase, hit_detail, problem))
        self.rounds.append({
            "round": number, "target": "%s:%s" % (kind, phase), "trigger": trigger, "delay_ms": round(delay, 1),
            "hit": hit_detail, "deployment": victim["id"] if victim else None,
            "after_ms": round(killed_at - (seen[0] if seen else started), 1), "restart_ms": round(restart_ms),
            "violations": len(problems)})
        log("  %s target=%s:%s trigger=%s hit=%s deployment=%s delay=%.1fms %s"
            % (label, kind, phase, trigger, hit_detail, victim["id"] if victim else "-", delay,
               "ok" if not problems else "%d VIOLATION(S)" % len(problems)))
        if number % 5 == 0 or number == total:
            self.push_check(round_label="after %s" % label)

    def run(self):
        total = self.ctx.args.kills
        log("crash consistency: %d kills" % total)
        for i in range(total):
            kind, phase = TARGETS[i % len(TARGETS)]
            try:
                self.run_round(i + 1, total, kind, phase)
            except (HarnessError, subprocess.TimeoutExpired, OSError, http.client.HTTPException) as error:
                # A daemon that never becomes idle again, or stops answering, is a finding, not a harness failure.
                self.ctx.violation("crash", "kill %d/%d (target %s:%s): the round could not complete: %s"
                                   % (i + 1, total, kind, phase, error))
                break
        self.daemon.stop()
        leftovers = step_processes(os.path.join(self.ctx.root, "crash"))
        if leftovers:
            self.ctx.violation("crash", "step processes left after a graceful stop: %s"
                               % "; ".join("%d %s" % (p["pid"], p["cmdline"][:50]) for p in leftovers))
            kill_pids([p["pid"] for p in leftovers])


# ----------------------------------------------------------------------------------------------------------------
# Part 2: a step fills the disk

DISK_PIPELINE = """\
repository: {repository}
branch: main
deploy_to: {deploy_to}
keep_releases: 2
build:
  - name: compile
    run: mkdir -p _build && echo ok > _build/complete && if [ -f FILL_DISK ]; then dd if=/dev/zero of=_build/big bs=1M; status=$?; sleep 0.5; exit $status; fi
activate:
  - name: restart
    run: echo "$SLIPWAY_DEPLOYMENT" > "$SLIPWAY_SHARED_DIR/live"
health:
  command: test "$(cat "$SLIPWAY_SHARED_DIR/live")" = "$SLIPWAY_DEPLOYMENT"
  timeout: 10s
  interval: 100ms
"""


class Pinger:
    """Asks /healthz and GET /api/v1/apps/<app> every 50 ms in a thread; counts the answers that did not come."""

    def __init__(self, port, app):
        self.port = port
        self.paths = ["/healthz", "/api/v1/apps/%s" % app]
        self.stop = threading.Event()
        self.ok = 0
        self.failed = []
        self.slowest = 0.0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            start = now_ms()
            path = self.paths[(self.ok + len(self.failed)) % len(self.paths)]
            try:
                status, answer = http_json(self.port, "GET", path, timeout=5)
                if status == 200:
                    self.ok += 1
                else:
                    self.failed.append("GET %s: HTTP %d %s" % (path, status, error_message(answer)))
            except (OSError, http.client.HTTPException) as error:
                self.failed.append(str(error))
            self.slowest = max(self.slowest, now_ms() - start)
            self.stop.wait(0.05)

    def finish(self):
        self.stop.set()
        self.thread.join(10)


def deploy_and_wait(daemon, app, repo, timeout=90):
    status, answer = daemon.api("POST", "/hooks/push", {
        "app": app, "ref": "refs/heads/main", "before": ZERO_SHA, "after": repo.head()}, timeout=60)
    if status != 202 or not (answer or {}).get("deployments"):
        return None, "POST /hooks/push answered %d: %s" % (status, error_message(answer))
    return daemon.wait_deployment(answer["deployments"][0]["id"], timeout), None


def disk_full(ctx):
    result = {"status": "ok", "variants": [], "skipped": None}
    variants = [("A", "deploy_to on a 16 MiB tmpfs (state elsewhere)", False),
                ("B", "state and deploy_to on one 16 MiB tmpfs", True)]
    log("disk full:")
    for key, description, state_on_tmpfs in variants:
        base = os.path.join(ctx.root, "disk-" + key)
        mnt = os.path.join(base, "mnt")
        failure = ctx.mount_tmpfs(mnt)
        if failure:
            result["skipped"] = "cannot mount a tmpfs (%s): the disk-full part was skipped" % failure
            result["status"] = "skipped"
            log("  SKIPPED: " + result["skipped"])
            return result
        variant = {"name": "%s: %s" % (key, description), "checks": [], "notes": []}
        result["variants"].append(variant)
        daemon = None

        def check(ok, text):
            variant["checks"].append(("ok" if ok else "VIOLATION", text))
            if not ok:
                ctx.violation("disk full %s" % key, text)
            return ok
        try:
            repo = Repo(ctx, "disk" + key.lower(), 150, os.path.join(base, "git"))
            pipelines = os.path.join(base, "pipelines")
            os.makedirs(pipelines)
            deploy_to = os.path.join(mnt, "deploy")
            state = os.path.join(mnt, "state") if state_on_tmpfs else os.path.join(base, "state")
            app = App("disk", deploy_to, repo, {"build": 1}, 2)
            write_pipeline(os.path.join(pipelines, "disk.yml"),
                           DISK_PIPELINE.format(repository=repo.bare, deploy_to=deploy_to))
            daemon = Daemon(ctx, "disk" + key, pipelines, state)
            daemon.start()
            first, error = deploy_and_wait(daemon, "disk", repo)
            if not first or first["status"] != "succeeded":
                raise HarnessError("the first deploy on the tmpfs did not succeed: %s"
                                   % (error or "%s: %s" % (first["status"], first["error"])))
            live = first["id"]

            # A build step writes until the disk is full.
            repo.commit(extra={"FILL_DISK": "yes\n"})
            repo.push(hook=False)
            pinger = Pinger(daemon.port, "disk")
            full, error = deploy_and_wait(daemon, "disk", repo)
            pinger.finish()
            if full is None:
                check(False, "the deploy that fills the disk did not start: %s" % error)
            else:
                text = open(os.path.join(state, "logs", "%d.log" % full["id"]), errors="replace").read() \
                    if os.path.exists(os.path.join(state, "logs", "%d.log" % full["id"])) else ""
                variant["notes"].append("deployment %d: %s, error: %r" % (full["id"], full["status"], full["error"]))
                check(full["status"] == "failed", "the deployment that fills the disk ends failed (it is %s)"
                      % full["status"])
                clear = bool(full["error"]) and "build" in full["error"] and "compile" in full["error"]
                check(clear, "its error names the failing build step: %r" % full["error"])
                no_space = "No space left on device" in text or "No space left" in (full["error"] or "")
                if state_on_tmpfs:
                    variant["notes"].append(
                        "the log %s 'No space left on device' (the log is on the full disk too, so it may be lost)"
                        % ("shows" if no_space else "does not show"))
                else:
                    check(no_space, "its log shows why: 'No space left on device'")
            check(not pinger.failed, "the daemon answered /healthz and GET /api/v1/apps/disk during the fill (%d answers, %d failures%s, "
                  "slowest %.0f ms)" % (pinger.ok, len(pinger.failed),
                                         ": " + pinger.failed[0] if pinger.failed else "", pinger.slowest))
            link = link_release(read_link(os.path.join(deploy_to, "current")))
            summary = daemon.get("/api/v1/apps/disk")
            check(link == live and (summary.get("current") or {}).get("id") == live,
                  "current still points at the previous complete release %d (link: %s, API: %s)"
                  % (live, link, (summary.get("current") or {}).get("id")))
            stat = os.statvfs(mnt)
            free_mb = stat.f_bavail * stat.f_frsize / 1048576.0
            check(free_mb > 8, "the failed release was removed and the space came back (%.1f MiB free of 16)"
                  % free_mb)
            for problem in check_app(daemon, app):
                check(False, "invariant after the fill: " + problem)

            if not state_on_tmpfs:
                # The disk is already full when a deploy starts: the checkout itself fails.
                filler = os.path.join(deploy_to, "shared", "filler")
                subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=1M"], capture_output=True)
                repo.commit(remove=("FILL_DISK",))
                repo.push(hook=False)
                early, error = deploy_and_wait(daemon, "disk", repo)
                os.unlink(filler)
                if early is None:
                    check(False, "a deploy onto a full disk did not start: %s" % error)
                else:
                    variant["notes"].append("deploy onto an already full disk: deployment %d %s, phase %s, error: %r"
                                            % (early["id"], early["status"], early["phase"], early["error"]))
                    check(early["status"] == "failed" and "No space left" in (early["error"] or ""),
                          "a deploy onto an already full disk fails at checkout and says why (%s: %r)"
                          % (early["status"], early["error"]))
                link = link_release(read_link(os.path.join(deploy_to, "current")))
                check(link == live, "current is still release %d after that (link: %s)" % (live, link))
                for problem in check_app(daemon, app):
                    check(False, "invariant after the checkout onto a full disk: " + problem)

            # Space is back: the next deploy works.
            repo.commit(remove=("FILL_DISK",))
            repo.push(hook=False)
            after, error = deploy_and_wait(daemon, "disk", repo)
            ok = after is not None and after["status"] == "succeeded"
            check(ok, "the next deploy after the space came back succeeds (%s)"
                  % (error or "deployment %d %s: %s" % (after["id"], after["status"], after["error"])))
            if ok:
                link = link_release(read_link(os.path.join(deploy_to, "current")))
                check(link == after["id"], "current -> releases/%s after it (deployment %d)" % (link, after["id"]))
            for problem in check_app(daemon, app, after_success=ok):
                check(False, "invariant at the end: " + problem)
            check(daemon.alive(), "the daemon is still running")
            # And after a restart on the same state.
            daemon.stop()
            daemon.start()
            problems = check_app(daemon, app)
            check(not problems, "invariants hold after a restart%s" % (": " + "; ".join(problems) if problems else ""))
        except HarnessError as error:
            check(False, "could not complete the disk-full scenario: %s" % error)
        finally:
            if daemon:
                daemon.stop()
            leftovers = step_processes(mnt)
            kill_pids([p["pid"] for p in leftovers])
            ctx.unmount(mnt)
        for status, text in variant["checks"]:
            log("  [%s] %s: %s" % (key, status, text))
        for note in variant["notes"]:
            log("  [%s] note: %s" % (key, note))
    if any(s != "ok" for v in result["variants"] for s, _ in v["checks"]):
        result["status"] = "violations"
    return result


# ----------------------------------------------------------------------------------------------------------------
# Part 3: the mirror's remote disappears

GONE_PIPELINE = """\
repository: {repository}
branch: main
deploy_to: {deploy_to}
keep_releases: 2
poll: 1s
build:
  - name: compile
    run: sleep 0.02; mkdir -p _build && echo ok > _build/complete
activate:
  - name: restart
    run: echo "$SLIPWAY_DEPLOYMENT" > "$SLIPWAY_SHARED_DIR/live"
health:
  command: test "$(cat "$SLIPWAY_SHARED_DIR/live")" = "$SLIPWAY_DEPLOYMENT"
  timeout: 10s
  interval: 100ms
"""

REASON_WORDS = ("not found", "no such file", "does not exist", "not exported", "access denied", "could not",
                "unable", "failed to resolve", "cannot", "refused", "not a git repository", "unexpected eof",
                "connection", "closed", "early eof")


def remote_gone(ctx):
    result = {"status": "ok", "checks": [], "notes": []}
    log("remote gone:")
    base = os.path.join(ctx.root, "gone")
    git_dir = os.path.join(ctx.root, "git")
    daemon = None

    def check(ok, text):
        result["checks"].append(("ok" if ok else "VIOLATION", text))
        log("  %s: %s" % ("ok" if ok else "VIOLATION", text))
        if not ok:
            ctx.violation("remote gone", text)
        return ok

    def note(text):
        result["notes"].append(text)
        log("  note: " + text)

    moved = None
    try:
        repo = Repo(ctx, "gone", 120, git_dir)
        pipelines = os.path.join(base, "pipelines")
        os.makedirs(pipelines)
        apps = {
            "gone": App("gone", os.path.join(base, "deploy", "gone"), repo, {"build": 1}, 2),
            "gonenet": App("gonenet", os.path.join(base, "deploy", "gonenet"), repo, {"build": 1}, 2),
        }
        write_pipeline(os.path.join(pipelines, "gone.yml"),
                       GONE_PIPELINE.format(repository=repo.bare, deploy_to=apps["gone"].deploy_to))
        write_pipeline(os.path.join(pipelines, "gonenet.yml"), GONE_PIPELINE.format(
            repository="git://127.0.0.1:%d/gone.git" % ctx.git_port, deploy_to=apps["gonenet"].deploy_to))
        daemon = Daemon(ctx, "gone", pipelines, os.path.join(base, "state"))
        daemon.start()
        subprocess.run([ctx.slipway, "hook", "install", repo.bare, "--app", "gone", "--server", daemon.url],
                       check=True, capture_output=True, env=ctx.daemon_env)

        def wait_live(app, commit, timeout=30):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                current = daemon.get("/api/v1/apps/%s" % app).get("current") or {}
                last = daemon.get("/api/v1/apps/%s" % app).get("last_deployment") or {}
                if current.get("commit") == commit and last.get("status") in FINISHED:
                    return current
                time.sleep(0.1)
            raise HarnessError("%s did not make %s live in %ds" % (app, commit[:10], timeout))

        # Four releases each (keep_releases 2, so the first two are pruned): gone by the push hook, gonenet by
        # polling over git://.
        commits = []
        for i in range(4):
            commits.append(repo.commit())
            rc, output = repo.push(hook=True)
            wait_live("gone", commits[-1])
            wait_live("gonenet", commits[-1])
        daemon.wait_idle(list(apps))
        releases = {name: daemon.query("SELECT id, [commit], removed_at FROM [release] WHERE app = ? ORDER BY id",
                                       (name,)) for name in apps}
        live_before = {name: daemon.get("/api/v1/apps/%s" % name)["current"]["id"] for name in apps}

        # The repository goes away.
        moved = os.path.join(base, "moved-away.git")
        shutil.move(repo.bare, moved)
        note("moved %s to %s" % (repo.bare, moved))
        for name in apps:
            before = daemon.max_deployment_id()
            status, answer = daemon.api("POST", "/api/v1/apps/%s/deploy" % name, {}, timeout=60)
            if status == 202:
                final = daemon.wait_deployment(answer["id"])
                message = final.get("error") or ""
                check(final["status"] == "failed", "%s: a manual deploy with the remote gone fails (deployment %d "
                      "%s)" % (name, final["id"], final["status"]))
                outcome = "deployment %d failed: %s" % (final["id"], message)
            else:
                message = error_message(answer)
                outcome = "HTTP %d %s" % (status, message)
                if status >= 500:
                    note("%s: the manual deploy answers %d (code %r) for a remote that is gone; the contract's "
                         "error statuses are 400/401/404/409/413" % (name, status, (answer or {}).get("error", {})
                                                                       .get("code") if isinstance(answer, dict) else None))
            lowered = message.lower()
            where = ("gone.git" in message) or ("repository" in lowered)
            why = any(word in lowered for word in REASON_WORDS)
            check(where and why, "%s: the manual deploy says why: %s" % (name, outcome))
            status, answer = daemon.api("POST", "/hooks/push", {
                "app": name, "ref": "refs/heads/main", "before": ZERO_SHA, "after": commits[-1]}, timeout=60)
            message = error_message(answer) if status != 202 else json.dumps(answer)[:300]
            check(status != 202 or not answer.get("deployments"),
                  "%s: a push notice with the remote gone starts no deployment (HTTP %d: %s)"
                  % (name, status, message))
            if status != 202:
                lowered = message.lower()
                check(("gone.git" in message or "repository" in lowered) and any(w in lowered for w in REASON_WORDS),
                      "%s: the push notice's error says why: HTTP %d %s" % (name, status, message))

        # Polling with the remote gone: the daemon keeps going and says why in its log.
        time.sleep(2.5)
        text = daemon.log_text(last=True)
        for name in apps:
            lines = [l for l in text.splitlines() if "polling %s failed" % name in l]
            check(bool(lines), "%s: polling with the remote gone is logged (%d lines)" % (name, len(lines)))
            if lines:
                message = lines[-1].split("polling %s failed:" % name, 1)[-1].strip()
                lowered = message.lower()
                where = "gone.git" in message or "repository" in lowered
                why = any(word in lowered for word in REASON_WORDS)
                check(where and why, "%s: the poll's log line says why (names the repository and the reason): %r"
                      % (name, message[:200]))
        note("a failed poll shows only in the daemon's log: the API (app status, deployments) does not show it")
        check(daemon.get("/healthz") == {"status": "ok"}, "the daemon still answers /healthz")
        for name, app in apps.items():
            current = daemon.get("/api/v1/apps/%s" % name)["current"]["id"]
            check(current == live_before[name], "%s: current is untouched (release %d, was %d)"
                  % (name, current, live_before[name]))
            for problem in check_app(daemon, app):
                check(False, "%s: invariant with the remote gone: %s" % (name, problem))

        # Rollbacks need no remote: to a kept release (nothing is built), and to a pruned release (rebuilt from the
        # mirror, which fetched that commit when it was deployed).
        for name, app in apps.items():
            kept = [r for r in releases[name] if r["removed_at"] is None and r["id"] != live_before[name]]
            if kept:
                status, answer = daemon.api("POST", "/api/v1/apps/%s/rollback" % name, {"to": kept[-1]["id"]})
                if status == 202:
                    final = daemon.wait_deployment(answer["id"])
                    check(final["status"] == "succeeded",
                          "%s: a rollback to kept release %d works with the remote gone (deployment %d %s%s)"
                          % (name, kept[-1]["id"], final["id"], final["status"],
                             ": " + final["error"] if final["error"] else ""))
                else:
                    check(False, "%s: a rollback to kept release %d with the remote gone answered %d: %s"
                          % (name, kept[-1]["id"], status, error_message(answer)))
            pruned = [r for r in releases[name] if r["removed_at"] is not None]
            if pruned:
                target = pruned[-1]
                status, answer = daemon.api("POST", "/api/v1/apps/%s/rollback" % name, {"to": target["id"]})
                if status == 202:
                    final = daemon.wait_deployment(answer["id"])
                    check(final["status"] == "succeeded",
                          "%s: a rollback to pruned release %d (commit %s, fetched into the mirror when it was "
                          "deployed) is rebuilt from the mirror with the remote gone (deployment %d %s%s)"
                          % (name, target["id"], target["commit"][:10], final["id"], final["status"],
                             ": " + final["error"] if final["error"] else ""))
                else:
                    check(False, "%s: a rollback to pruned release %d with the remote gone answered %d: %s"
                          % (name, target["id"], status, error_message(answer)))
            daemon.wait_idle([name])
            for problem in check_app(daemon, app):
                check(False, "%s: invariant after the rollbacks: %s" % (name, problem))
        mirror = os.path.join(base, "state", "repos", "gone.git", "objects", "info", "alternates")
        if os.path.exists(mirror):
            note("the local app's mirror has objects/info/alternates -> %s: it stores no objects of its own"
                 % open(mirror).read().strip())

        # The repository comes back: the next push deploys both apps.
        shutil.move(moved, repo.bare)
        moved = None
        head = repo.commit()
        rc, output = repo.push(hook=True)
        deployed = re.findall(r"deployment (\d+) (succeeded|failed)", output)
        check(bool(deployed) and deployed[-1][1] == "succeeded",
              "gone: after the repository is back, a git push deploys it (%s)"
              % (" | ".join(output.strip().splitlines()[-3:])))
        try:
            wait_live("gonenet", head)
            ok = True
        except HarnessError as error:
            ok = False
            note(str(error))
        check(ok, "gonenet: after the repository is back, polling deploys the new head")
        daemon.wait_idle(list(apps))
        for name, app in apps.items():
            for problem in check_app(daemon, app, after_success=True):
                check(False, "%s: invariant at the end: %s" % (name, problem))
    except HarnessError as error:
        check(False, "could not complete the remote-gone scenario: %s" % error)
    finally:
        if moved and os.path.exists(moved) and not os.path.exists(os.path.join(git_dir, "gone.git")):
            shutil.move(moved, os.path.join(git_dir, "gone.git"))
        if daemon:
            daemon.stop()
    if any(s != "ok" for s, _ in result["checks"]):
        result["status"] = "violations"
    return result


# ----------------------------------------------------------------------------------------------------------------
# Reporting


def machine():
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    return uname, os.cpu_count()


def markdown(ctx, command, started, elapsed, crash, disk, gone):
    uname, cores = machine()
    lines = []
    lines.append("## Fault injection: `bench/faults`")
    lines.append("")
    lines.append("- Command: `%s`" % command)
    lines.append("- Date: %s" % started.strftime("%Y-%m-%dT%H:%M:%SZ"))
    lines.append("- Machine: `%s`, %s cores" % (uname, cores))
    lines.append("- Binary: `%s`" % ctx.slipway)
    lines.append("- Took %.0f s" % elapsed)
    lines.append("")
    lines.append("### Crash consistency (SIGKILL, restart on the same state)")
    lines.append("")
    if crash:
        crash_violations = [t for p, t in ctx.violations if p == "crash"]
        lines.append("- Kills / invariant violations: **%d / %d**" % (crash.kills, len(crash_violations)))
        lines.append("- Pushes after restarts that had to deploy: %d, failed: %d"
                     % (crash.push_checks, crash.push_failures))
        lines.append("- Phases hit (read from the store after each kill): %s" % ", ".join(
            "%s %d" % (k, v) for k, v in sorted(crash.hits.items(), key=lambda kv: -kv[1])))
        lines.append("- By kind: %s" % ", ".join(
            "%s %d" % (k, v) for k, v in sorted(crash.hits_by_kind.items())))
        lines.append("")
        restarts = sorted(r["restart_ms"] for r in crash.rounds)
        if restarts:
            lines.append("- Restart after a kill (recovery included) until the daemon listens: median %d ms, max %d ms"
                         % (restarts[len(restarts) // 2], restarts[-1]))
        lines.append("")
        lines.append("| # | target | trigger | hit (from the store) | deployment | delay ms | restart ms | violations |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in crash.rounds:
            lines.append("| %d | %s | %s | %s | %s | %.1f | %d | %d |" % (
                r["round"], r["target"], r["trigger"].replace("|", "/"), r["hit"], r["deployment"] or "-",
                r["delay_ms"], r["restart_ms"], r["violations"]))
    else:
        lines.append("- not run")
    lines.append("")
    lines.append("### A step fills the disk")
    lines.append("")
    if disk is None:
        lines.append("- not run")
    elif disk["skipped"]:
        lines.append("- SKIPPED: %s" % disk["skipped"])
    for variant in (disk or {}).get("variants", []):
        lines.append("- %s" % variant["name"])
        for status, text in variant["checks"]:
            lines.append("  - %s: %s" % (status, text))
        for note in variant["notes"]:
            lines.append("  - note: %s" % note)
    lines.append("")
    lines.append("### The mirror's remote disappears")
    lines.append("")
    if gone is None:
        lines.append("- not run")
    else:
        for status, text in gone["checks"]:
            lines.append("- %s: %s" % (status, text))
        for note in gone["notes"]:
            lines.append("- note: %s" % note)
    lines.append("")
    if TRANSIENTS:
        lines.append("### Disagreements that settled by themselves (notes, not violations)")
        lines.append("")
        for text in TRANSIENTS[:20]:
            lines.append("- %s" % text)
        if len(TRANSIENTS) > 20:
            lines.append("- ... %d more" % (len(TRANSIENTS) - 20))
        lines.append("")
    lines.append("### Violations: %d" % len(ctx.violations))
    lines.append("")
    for part, text in ctx.violations:
        lines.append("- [%s] %s" % (part, text))
    if not ctx.violations:
        lines.append("- none")
    lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="how many SIGKILLs (default 50; 8 for CI)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slipway", default=DEFAULT_SLIPWAY, help="the slipway binary (default %(default)s)")
    parser.add_argument("--out", help="write a Markdown section for bench/RESULTS.md here")
    parser.add_argument("--files", type=int, default=400, help="files in the crash app's repository")
    parser.add_argument("--skip-disk", action="store_true")
    parser.add_argument("--skip-remote", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if not os.access(args.slipway, os.X_OK):
        print("faults: %s is not an executable slipway binary (use --slipway PATH)" % args.slipway, file=sys.stderr)
        return 2
    if args.kills < 0:
        print("faults: --kills must be 0 or more", file=sys.stderr)
        return 2
    command = "bench/faults/run " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()

    # Short GIL switches: the thread that follows the event stream and the one that kills must not wait 5 ms for
    # each other.
    sys.setswitchinterval(0.0002)

    def terminate(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, terminate)

    ctx = Context(args)
    crash = disk = gone = None
    status = 0
    log("faults: slipway %s, seed %d, temporary directory %s" % (ctx.slipway, args.seed, ctx.root))
    try:
        crash = CrashBench(ctx)
        crash.setup()
        log("(setup took %.0f s)" % (time.monotonic() - clock))
        mark = time.monotonic()
        crash.run()
        log("(crash consistency took %.0f s)" % (time.monotonic() - mark))
        if not args.skip_disk:
            mark = time.monotonic()
            disk = disk_full(ctx)
            log("(disk full took %.0f s)" % (time.monotonic() - mark))
        if not args.skip_remote:
            mark = time.monotonic()
            gone = remote_gone(ctx)
            log("(remote gone took %.0f s)" % (time.monotonic() - mark))
    except (HarnessError, KeyboardInterrupt, Exception) as error:
        traceback.print_exc()
        print("faults: the harness stopped: %s" % error, file=sys.stderr)
        status = 2
    finally:
        keep = args.keep or status == 2
        ctx.cleanup(keep)
        if keep and os.path.exists(ctx.root):
            log("faults: kept %s (logs in logs/)" % ctx.root)
    elapsed = time.monotonic() - clock

    crash_violations = [t for p, t in ctx.violations if p == "crash"]
    log("")
    log("== summary ==")
    if crash:
        log("crash consistency: kills %d / invariant violations %d; pushes after restarts %d, failed %d"
            % (crash.kills, len(crash_violations), crash.push_checks, crash.push_failures))
        log("phases hit: " + ", ".join("%s %d" % (k, v) for k, v in sorted(crash.hits.items(), key=lambda kv: -kv[1])))
        log("by kind:    " + ", ".join("%s %d" % (k, v) for k, v in sorted(crash.hits_by_kind.items())))
        restarts = sorted(r["restart_ms"] for r in crash.rounds)
        if restarts:
            log("restart after a kill until listening: median %d ms, max %d ms"
                % (restarts[len(restarts) // 2], restarts[-1]))
    if disk:
        log("disk full: %s" % (disk["skipped"] or disk["status"]))
    if gone:
        log("remote gone: %s" % gone["status"])
    if TRANSIENTS:
        log("disagreements that settled within 0.5 s (notes): %d; first: %s" % (len(TRANSIENTS), TRANSIENTS[0]))
    log("violations: %d" % len(ctx.violations))
    for part, text in ctx.violations:
        log("  - [%s] %s" % (part, text))
    log("took %.0f s" % elapsed)
    if args.out:
        with open(args.out, "w") as f:
            f.write(markdown(ctx, command, started, elapsed, crash, disk, gone))
        log("wrote %s" % args.out)
    if status:
        return status
    return 1 if ctx.violations else 0


if __name__ == "__main__":
    sys.exit(main())
