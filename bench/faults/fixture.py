"""What the three parts of bench/faults share: the run's context (its temporary folder, processes, mounts and
violations), the git repositories made here, the daemon with its store, and the release links."""

import os
import random
import re
import shutil
import sqlite3
import subprocess
import time

from harness import FINISHED, HarnessError
from harness import git as hgit
from harness import ports, processes
from harness.daemon import Daemon
from harness.log import out as log
from harness.scratch import Scratch
from harness.sse import Follower


def now_ms():
    return time.monotonic() * 1000.0


def read_link(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def link_release(target):
    match = re.fullmatch(r"releases/(\d+)", target or "")
    return int(match.group(1)) if match else None


# The activate step and health check of the disk-full and remote-gone apps: the health command passes once the
# shared `live` file names the deployment that activated.
MARK_LIVE = """\
activate:
  - name: restart
    run: echo "$SLIPWAY_DEPLOYMENT" > "$SLIPWAY_SHARED_DIR/live"
health:
  command: test "$(cat "$SLIPWAY_SHARED_DIR/live")" = "$SLIPWAY_DEPLOYMENT"
  timeout: 10s
  interval: 100ms
"""


def pipeline_head(repository, deploy_to, keep_releases):
    """The first lines of a pipeline file: where the app comes from and goes to."""
    return "repository: %s\nbranch: main\ndeploy_to: %s\nkeep_releases: %d\n" % (repository, deploy_to, keep_releases)


def write_pipeline(path, text):
    with open(path, "w") as f:
        f.write(text)


def install_hook(ctx, bare, app, server, gate=False):
    """`slipway hook install` (the post-receive hook, or with gate the pre-receive one), replacing what is there."""
    argv = [ctx.slipway, "hook", "install", bare, "--app", app, "--server", server, "--force"]
    result = subprocess.run(argv + (["--gate"] if gate else []), capture_output=True, text=True, env=ctx.daemon_env)
    if result.returncode != 0:
        raise HarnessError("slipway hook install failed: %s" % (result.stderr or result.stdout))


class Checks:
    """The checks of a scenario, each ok or a violation of its part, and its notes; each is logged as it comes."""

    def __init__(self, ctx, part):
        self.ctx = ctx
        self.part = part
        self.items = []  # (ok or VIOLATION, text)
        self.notes = []

    def check(self, ok, text):
        self.items.append(("ok" if ok else "VIOLATION", text))
        if ok:
            log("  ok: " + text)
        else:
            self.ctx.violation(self.part, text)
        return ok

    def note(self, text):
        self.notes.append(text)
        log("  note: " + text)

    def failed(self):
        return any(status != "ok" for status, _ in self.items)


# ----------------------------------------------------------------------------------------------------------------
# The run's context


class Context:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.slipway = os.path.abspath(args.slipway)
        self.scratch = Scratch("faults")
        self.root = self.scratch.root
        self.procs = processes.Processes()
        self.mounts = []
        for sub in ("work", "git", "logs", "home"):
            os.makedirs(os.path.join(self.root, sub))
        home = os.path.join(self.root, "home")
        self.git_env = hgit.identity_env("Fault Bench", "faults@example.invalid", home, LANG="C", LC_ALL="C")
        self.daemon_env = dict(os.environ, HOME=home, LANG="C")
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
        for _ in range(5):
            port = ports.free_port()
            process = self.procs.popen(
                "git daemon", ["git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1",
                               "--port=%d" % port, "--base-path=" + base, base],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.root, "logs", "git-daemon.log"), "a"),
                env=self.git_env, start_new_session=True)
            if ports.wait_listening(port, 5, alive=lambda: process.poll() is None):
                self.git_daemon, self.git_port = process, port
                return
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

    def end_step_processes(self, root):
        """Kills the step processes of the apps deployed under root; returns what it found."""
        leftovers = processes.step_processes(root)
        processes.kill_pids([p["pid"] for p in leftovers])
        return leftovers

    def cleanup(self, keep):
        self.procs.end_all()
        if self.proxy:
            self.proxy.close()
        self.end_step_processes(self.root)
        time.sleep(0.1)
        self.procs.reap_orphans()
        for directory in list(self.mounts):
            self.unmount(directory)
        self.scratch.finish(keep and os.path.exists(self.root), "faults: kept %s (logs in logs/)" % self.root, log)


# ----------------------------------------------------------------------------------------------------------------
# Git repositories made here


# The files a commit may carry to make a step wait or misbehave; a change removes those it is not given again.
MARKERS = ("BUILD_SLEEP", "HEALTH_SLEEP", "FILL_DISK", "HOLD", "FAIL_BUILD", "FAIL_HEALTH")


class Repo(hgit.WorkRepo):
    """A working repository of `files` files (plus a script, a symlink and VERSION) and the bare repository it
    pushes to."""

    def __init__(self, ctx, name, files, bare_dir):
        super().__init__(os.path.join(ctx.root, "work", name), os.path.join(bare_dir, name + ".git"), ctx.git_env)
        self.ctx = ctx
        self.name = name
        self.rng = random.Random("%s-%s" % (ctx.seed, name))
        self.counter = 0
        self.trees = {}
        for i in range(files):
            self.write(os.path.join("src", "m%02d" % (i % 20), "f%04d.txt" % i), self.text(i))
        self.write(os.path.join("bin", "tool.sh"), "#!/bin/sh\necho tool\n", mode=0o755)
        os.symlink("src/m00/f0000.txt", os.path.join(self.work, "first-file"))
        self.write("VERSION", "0\n")
        self.commit("initial tree of %d files" % files)
        self.push(hook=False)

    def text(self, i):
        words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
        lines = [" ".join(self.rng.choice(words) for _ in range(12)) for _ in range(self.rng.randint(8, 30))]
        return "file %d\n%s\n" % (i, "\n".join(lines))

    def change(self, extra=None, remove=()):
        """A new commit on main that changes VERSION and a few files; extra: {path: content}; remove: paths."""
        self.counter += 1
        self.write("VERSION", "%d\n" % self.counter)
        sources = sorted(
            os.path.join(d, n) for d, _, names in os.walk(os.path.join(self.work, "src")) for n in names)
        for path in self.rng.sample(sources, min(3, len(sources))):
            with open(path, "a") as f:
                f.write("change %d\n" % self.counter)
        if self.rng.random() < 0.3:
            self.write(os.path.join("src", "added", "a%04d.txt" % self.counter), self.text(10000 + self.counter))
        added = [p for p in sources if "/src/added/" in p]
        if added and self.rng.random() < 0.3:
            os.unlink(self.rng.choice(added))
        extra = extra or {}
        remove = tuple(remove) + tuple(m for m in MARKERS if m not in extra)
        for path, content in extra.items():
            self.write(path, content)
        for path in remove:
            full = os.path.join(self.work, path)
            if os.path.exists(full):
                os.unlink(full)
        return self.commit("change %d" % self.counter)

    def push(self, hook, timeout=120):
        """Pushes main. Without hook, the bare repository's hooks are switched off for this push."""
        argv = ["push", "-q", self.bare, "main"]
        if not hook:
            argv = ["push", "-q", "--receive-pack=git -c core.hooksPath=/dev/null receive-pack", self.bare, "main"]
        result = hgit.run(*argv, cwd=self.work, env=self.env, timeout=timeout)
        if not hook and result.returncode != 0:
            raise HarnessError("git push failed: %s" % result.stderr.strip())
        return result.returncode, result.stdout + result.stderr

    def push_in_background(self, output_path):
        with open(output_path, "w") as out:
            return self.ctx.procs.popen("git push", ["git", "push", self.bare, "main"], cwd=self.work, env=self.env,
                                        stdout=out, stderr=subprocess.STDOUT)

    def tree(self, commit):
        """{path: (mode, blob sha)} of a commit, read from the working repository (it has every commit)."""
        if commit not in self.trees:
            entries = {}
            for record in self.git("ls-tree", "-r", "-z", "--full-tree", commit).split("\0"):
                if record:
                    meta, path = record.split("\t", 1)
                    mode, _, sha = meta.split()
                    entries[path] = (mode, sha)
            self.trees[commit] = entries
        return self.trees[commit]


# ----------------------------------------------------------------------------------------------------------------
# The daemon


class FaultsDaemon(Daemon):
    """`slipway serve` restarted again and again on the same state, one log file per start; the harness follows
    its event stream and reads its store."""

    def __init__(self, ctx, name, pipelines, state):
        super().__init__(ctx.slipway, pipelines, state, args=["--shutdown-grace", "3s"], env=ctx.daemon_env,
                         procs=ctx.procs)
        self.ctx = ctx
        self.name = name
        self.events = None
        self.starts = 0

    def start(self):
        """Starts `slipway serve` on the same state (and the same port when it can); returns when it listens, with
        whether the port changed."""
        for attempt in range(3):
            self.starts += 1
            self.log_path = os.path.join(self.ctx.root, "logs", "%s-%03d.log" % (self.name, self.starts))
            before = self.port
            try:
                port = super().start(port=self.port if (self.port and attempt == 0) else 0)
            except HarnessError:
                if attempt == 2:
                    raise HarnessError("slipway serve did not start (log %s):\n%s"
                                       % (self.log_path, self.log_text()[-2000:]))
                self.port = 0
                continue
            self.events = Follower(port)
            return before != port
        return True

    def waiting(self):
        self.ctx.procs.reap_orphans()

    def wait_deployment(self, deployment_id, timeout=60):
        return self.wait_finished(deployment_id, timeout, poll=0.05)

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

    def busy(self, apps):
        """Whether a deployment of these apps is queued or running, by the API or by the store."""
        for app in apps:
            answer = self.get("/api/v1/apps/%s" % app)
            last = answer.get("last_deployment") or {}
            if answer.get("queued") or last.get("status") in ("queued", "running"):
                return True
        rows = self.query("SELECT id FROM deployment WHERE status IN ('queued','running') AND app IN (%s)"
                          % ",".join("?" * len(apps)), tuple(apps))
        return bool(rows)

    def wait_idle(self, apps, timeout=60):
        """Waits until no deployment of these apps is queued or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.busy(apps):
                return
            time.sleep(0.05)
        raise HarnessError("%s did not become idle in %ds" % (", ".join(apps), timeout))

    def wait_live(self, app, commit, timeout=30):
        """Waits until `commit` is the app's live release and its last deployment has ended; the live release."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.get("/api/v1/apps/%s" % app)
            current = answer.get("current") or {}
            if current.get("commit") == commit and finished(answer.get("last_deployment") or {}):
                return current
            time.sleep(0.1)
        raise HarnessError("%s did not make %s live in %ds" % (app, commit[:10], timeout))

    def max_deployment_id(self):
        rows = self.query("SELECT MAX(id) AS m FROM deployment")
        return rows[0]["m"] or 0

    def wait_deployment_of(self, app, wanted, timeout=60):
        """The newest deployment of the app that wanted(deployment) accepts, once it has ended; None when none has
        within the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            newest = [d for d in self.get("/api/v1/apps/%s/deployments?limit=10" % app)["deployments"] if wanted(d)]
            if newest and finished(newest[0]):
                return newest[0]
            time.sleep(0.05)
        return None

    def notify_push(self, app, after, timeout=20):
        """POST /hooks/push for the app, as its hook would: (status, answer)."""
        return self.request("POST", "/hooks/push", {
            "app": app, "ref": "refs/heads/main", "before": hgit.ZERO_SHA, "after": after}, timeout=timeout)


def finished(deployment):
    return deployment.get("status") in FINISHED
