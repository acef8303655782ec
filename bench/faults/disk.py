"""Part 2: a step fills the disk. deploy_to (and, in a second variant, the state too) is on a 16 MiB tmpfs, and a
build step writes until the disk is full."""

import http.client
import os
import subprocess
import threading

from fixture import MARK_LIVE, FaultsDaemon, Repo, link_release, now_ms, read_link, write_pipeline
from harness import HarnessError, web
from harness.log import out as log
from invariants import App, check_app

DISK_PIPELINE = """\
repository: {repository}
branch: main
deploy_to: {deploy_to}
keep_releases: 2
build:
  - name: compile
    run: mkdir -p _build && echo ok > _build/complete && if [ -f FILL_DISK ]; then dd if=/dev/zero of=_build/big bs=1M; status=$?; sleep 0.5; exit $status; fi
""" + MARK_LIVE

VARIANTS = [("A", "deploy_to on a 16 MiB tmpfs (state elsewhere)", False),
            ("B", "state and deploy_to on one 16 MiB tmpfs", True)]


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
                status, answer = web.request(self.port, "GET", path, timeout=5)
                if status == 200:
                    self.ok += 1
                else:
                    self.failed.append("GET %s: HTTP %d %s" % (path, status, web.error_message(answer)))
            except (OSError, http.client.HTTPException) as error:
                self.failed.append(str(error))
            self.slowest = max(self.slowest, now_ms() - start)
            self.stop.wait(0.05)

    def finish(self):
        self.stop.set()
        self.thread.join(10)


def deploy_and_wait(daemon, app, repo, timeout=90):
    status, answer = daemon.notify_push(app, repo.head(), timeout=60)
    if status != 202 or not (answer or {}).get("deployments"):
        return None, "POST /hooks/push answered %d: %s" % (status, web.error_message(answer))
    return daemon.wait_deployment(answer["deployments"][0]["id"], timeout), None


def disk_full(ctx):
    result = {"status": "ok", "variants": [], "skipped": None}
    log("disk full:")
    for key, description, state_on_tmpfs in VARIANTS:
        variant = DiskVariant(ctx, key, description, state_on_tmpfs)
        failure = ctx.mount_tmpfs(variant.mnt)
        if failure:
            result["skipped"] = "cannot mount a tmpfs (%s): the disk-full part was skipped" % failure
            result["status"] = "skipped"
            log("  SKIPPED: " + result["skipped"])
            return result
        result["variants"].append(variant.record)
        variant.run()
    if any(s != "ok" for v in result["variants"] for s, _ in v["checks"]):
        result["status"] = "violations"
    return result


class DiskVariant:
    """One variant: a first deploy, a deploy whose build fills the disk, (with the state elsewhere) a deploy onto
    a disk that is already full, and a deploy once the space is back; then a restart."""

    def __init__(self, ctx, key, description, state_on_tmpfs):
        self.ctx = ctx
        self.key = key
        self.state_on_tmpfs = state_on_tmpfs
        self.base = os.path.join(ctx.root, "disk-" + key)
        self.mnt = os.path.join(self.base, "mnt")
        self.record = {"name": "%s: %s" % (key, description), "checks": [], "notes": []}
        self.daemon = None

    def check(self, ok, text):
        self.record["checks"].append(("ok" if ok else "VIOLATION", text))
        if not ok:
            self.ctx.violation("disk full %s" % self.key, text)
        return ok

    def note(self, text):
        self.record["notes"].append(text)

    def check_invariants(self, when, after_success=False):
        for problem in check_app(self.daemon, self.app, after_success=after_success):
            self.check(False, "invariant %s: %s" % (when, problem))

    def current_release(self):
        return link_release(read_link(os.path.join(self.deploy_to, "current")))

    def run(self):
        try:
            self.start()
            self.fill()
            if not self.state_on_tmpfs:
                self.deploy_onto_full_disk()
            self.space_back()
        except HarnessError as error:
            self.check(False, "could not complete the disk-full scenario: %s" % error)
        finally:
            if self.daemon:
                self.daemon.stop()
            self.ctx.end_step_processes(self.mnt)
            self.ctx.unmount(self.mnt)
        for status, text in self.record["checks"]:
            log("  [%s] %s: %s" % (self.key, status, text))
        for note in self.record["notes"]:
            log("  [%s] note: %s" % (self.key, note))

    def start(self):
        ctx, key = self.ctx, self.key
        self.repo = Repo(ctx, "disk" + key.lower(), 150, os.path.join(self.base, "git"))
        pipelines = os.path.join(self.base, "pipelines")
        os.makedirs(pipelines)
        self.deploy_to = os.path.join(self.mnt, "deploy")
        self.state = os.path.join(self.mnt, "state") if self.state_on_tmpfs else os.path.join(self.base, "state")
        self.app = App("disk", self.deploy_to, self.repo, {"build": 1}, 2)
        write_pipeline(os.path.join(pipelines, "disk.yml"),
                       DISK_PIPELINE.format(repository=self.repo.bare, deploy_to=self.deploy_to))
        self.daemon = FaultsDaemon(ctx, "disk" + key, pipelines, self.state)
        self.daemon.start()
        # The daemon has never seen the branch: its catch-up at start-up deploys the head.
        head = self.repo.head()
        first = self.daemon.wait_deployment_of("disk", lambda d: d["commit"] == head)
        if not first or first["status"] != "succeeded":
            raise HarnessError("the first deploy on the tmpfs (the catch-up at start-up) did not succeed: %s"
                               % ("%s: %s" % (first["status"], first["error"]) if first else "none came"))
        self.live = first["id"]

    def fill(self):
        """A build step writes until the disk is full: the deployment fails and says why, the daemon keeps
        answering, and the previous release stays live."""
        self.repo.change(extra={"FILL_DISK": "yes\n"})
        self.repo.push(hook=False)
        pinger = Pinger(self.daemon.port, "disk")
        full, error = deploy_and_wait(self.daemon, "disk", self.repo)
        pinger.finish()
        if full is None:
            self.check(False, "the deploy that fills the disk did not start: %s" % error)
        else:
            self.check_failed_fill(full)
        self.check(not pinger.failed, "the daemon answered /healthz and GET /api/v1/apps/disk during the fill (%d "
                   "answers, %d failures%s, slowest %.0f ms)"
                   % (pinger.ok, len(pinger.failed), ": " + pinger.failed[0] if pinger.failed else "", pinger.slowest))
        link = self.current_release()
        summary = self.daemon.get("/api/v1/apps/disk")
        self.check(link == self.live and (summary.get("current") or {}).get("id") == self.live,
                   "current still points at the previous complete release %d (link: %s, API: %s)"
                   % (self.live, link, (summary.get("current") or {}).get("id")))
        stat = os.statvfs(self.mnt)
        free_mb = stat.f_bavail * stat.f_frsize / 1048576.0
        self.check(free_mb > 8, "the failed release was removed and the space came back (%.1f MiB free of 16)"
                   % free_mb)
        self.check_invariants("after the fill")

    def check_failed_fill(self, full):
        log_path = os.path.join(self.state, "logs", "%d.log" % full["id"])
        text = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
        self.note("deployment %d: %s, error: %r" % (full["id"], full["status"], full["error"]))
        self.check(full["status"] == "failed", "the deployment that fills the disk ends failed (it is %s)"
                   % full["status"])
        clear = bool(full["error"]) and "build" in full["error"] and "compile" in full["error"]
        self.check(clear, "its error names the failing build step: %r" % full["error"])
        no_space = "No space left on device" in text or "No space left" in (full["error"] or "")
        if self.state_on_tmpfs:
            self.note("the log %s 'No space left on device' (the log is on the full disk too, so it may be lost)"
                      % ("shows" if no_space else "does not show"))
        else:
            self.check(no_space, "its log shows why: 'No space left on device'")

    def deploy_onto_full_disk(self):
        """The disk is already full when a deploy starts: the checkout itself fails."""
        filler = os.path.join(self.deploy_to, "shared", "filler")
        subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=1M"], capture_output=True)
        self.repo.change(remove=("FILL_DISK",))
        self.repo.push(hook=False)
        early, error = deploy_and_wait(self.daemon, "disk", self.repo)
        os.unlink(filler)
        if early is None:
            self.check(False, "a deploy onto a full disk did not start: %s" % error)
        else:
            self.note("deploy onto an already full disk: deployment %d %s, phase %s, error: %r"
                      % (early["id"], early["status"], early["phase"], early["error"]))
            self.check(early["status"] == "failed" and "No space left" in (early["error"] or ""),
                       "a deploy onto an already full disk fails at checkout and says why (%s: %r)"
                       % (early["status"], early["error"]))
        link = self.current_release()
        self.check(link == self.live, "current is still release %d after that (link: %s)" % (self.live, link))
        self.check_invariants("after the checkout onto a full disk")

    def space_back(self):
        """Space is back: the next deploy works, and so does a restart on the same state."""
        self.repo.change(remove=("FILL_DISK",))
        self.repo.push(hook=False)
        after, error = deploy_and_wait(self.daemon, "disk", self.repo)
        ok = after is not None and after["status"] == "succeeded"
        self.check(ok, "the next deploy after the space came back succeeds (%s)"
                   % (error or "deployment %d %s: %s" % (after["id"], after["status"], after["error"])))
        if ok:
            link = self.current_release()
            self.check(link == after["id"], "current -> releases/%s after it (deployment %d)" % (link, after["id"]))
        self.check_invariants("at the end", after_success=ok)
        self.check(self.daemon.alive(), "the daemon is still running")
        self.daemon.stop()
        self.daemon.start()
        problems = check_app(self.daemon, self.app)
        self.check(not problems, "invariants hold after a restart%s" % (": " + "; ".join(problems) if problems else ""))
