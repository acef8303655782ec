"""Part 3: the mirror's remote disappears. The bare repository is moved away (for a local-path app and for a
git:// app); manual deploys, pushes, polls and rollbacks are tried; then the repository comes back."""

import json
import os
import re
import shutil
import time

from fixture import MARK_LIVE, Checks, FaultsDaemon, Repo, install_hook, write_pipeline
from harness import HarnessError
from harness.log import out as log
from harness.web import error_message
from invariants import App, check_app

GONE_PIPELINE = """\
repository: {repository}
branch: main
deploy_to: {deploy_to}
keep_releases: 2
poll: 1s
build:
  - name: compile
    run: sleep 0.02; mkdir -p _build && echo ok > _build/complete
""" + MARK_LIVE

REASON_WORDS = ("not found", "no such file", "does not exist", "not exported", "access denied", "could not",
                "unable", "failed to resolve", "cannot", "refused", "not a git repository", "unexpected eof",
                "connection", "closed", "early eof")


def says_why(message):
    """Whether an error message names the repository and a reason."""
    lowered = message.lower()
    return ("gone.git" in message or "repository" in lowered) and any(word in lowered for word in REASON_WORDS)


def remote_gone(ctx):
    log("remote gone:")
    scenario = RemoteGone(ctx)
    scenario.run()
    checks = scenario.checks
    return {"status": "violations" if checks.failed() else "ok", "checks": checks.items, "notes": checks.notes}


class RemoteGone:
    def __init__(self, ctx):
        self.ctx = ctx
        self.base = os.path.join(ctx.root, "gone")
        self.git_dir = os.path.join(ctx.root, "git")
        self.daemon = None
        self.moved = None
        self.checks = Checks(ctx, "remote gone")
        self.check = self.checks.check
        self.note = self.checks.note

    def check_invariants(self, name, app, when, after_success=False):
        for problem in check_app(self.daemon, app, after_success=after_success):
            self.check(False, "%s: invariant %s: %s" % (name, when, problem))

    def run(self):
        try:
            self.start()
            self.deploy_four_releases()
            self.move_away()
            for name in self.apps:
                self.deploy_manually(name)
                self.notify(name)
            self.polling()
            for name, app in self.apps.items():
                self.rollbacks(name, app)
            self.come_back()
        except HarnessError as error:
            self.check(False, "could not complete the remote-gone scenario: %s" % error)
        finally:
            moved = self.moved
            if moved and os.path.exists(moved) and not os.path.exists(os.path.join(self.git_dir, "gone.git")):
                shutil.move(moved, os.path.join(self.git_dir, "gone.git"))
            if self.daemon:
                self.daemon.stop()

    def start(self):
        ctx, base = self.ctx, self.base
        self.repo = Repo(ctx, "gone", 120, self.git_dir)
        pipelines = os.path.join(base, "pipelines")
        os.makedirs(pipelines)
        self.apps = {
            "gone": App("gone", os.path.join(base, "deploy", "gone"), self.repo, {"build": 1}, 2),
            "gonenet": App("gonenet", os.path.join(base, "deploy", "gonenet"), self.repo, {"build": 1}, 2),
        }
        write_pipeline(os.path.join(pipelines, "gone.yml"),
                       GONE_PIPELINE.format(repository=self.repo.bare, deploy_to=self.apps["gone"].deploy_to))
        write_pipeline(os.path.join(pipelines, "gonenet.yml"), GONE_PIPELINE.format(
            repository="git://127.0.0.1:%d/gone.git" % ctx.git_port, deploy_to=self.apps["gonenet"].deploy_to))
        self.daemon = FaultsDaemon(ctx, "gone", pipelines, os.path.join(base, "state"))
        self.daemon.start()
        install_hook(ctx, self.repo.bare, "gone", self.daemon.url)

    def deploy_four_releases(self):
        """Four releases each (keep_releases 2, so the first two are pruned): gone by the push hook, gonenet by
        polling over git://."""
        self.commits = []
        for _ in range(4):
            self.commits.append(self.repo.change())
            self.repo.push(hook=True)
            self.daemon.wait_live("gone", self.commits[-1])
            self.daemon.wait_live("gonenet", self.commits[-1])
        daemon = self.daemon
        daemon.wait_idle(list(self.apps))
        self.releases = {name: daemon.query("SELECT id, [commit], removed_at FROM [release] WHERE app = ? ORDER BY id",
                                            (name,)) for name in self.apps}
        self.live_before = {name: daemon.get("/api/v1/apps/%s" % name)["current"]["id"] for name in self.apps}

    def move_away(self):
        self.moved = os.path.join(self.base, "moved-away.git")
        shutil.move(self.repo.bare, self.moved)
        self.note("moved %s to %s" % (self.repo.bare, self.moved))

    def deploy_manually(self, name):
        """A manual deploy with the remote gone fails, and says why."""
        status, answer = self.daemon.request("POST", "/api/v1/apps/%s/deploy" % name, {}, timeout=60)
        if status == 202:
            final = self.daemon.wait_deployment(answer["id"])
            message = final.get("error") or ""
            self.check(final["status"] == "failed", "%s: a manual deploy with the remote gone fails (deployment %d "
                       "%s)" % (name, final["id"], final["status"]))
            outcome = "deployment %d failed: %s" % (final["id"], message)
        else:
            message = error_message(answer)
            outcome = "HTTP %d %s" % (status, message)
            if status >= 500:
                code = (answer or {}).get("error", {}).get("code") if isinstance(answer, dict) else None
                self.note("%s: the manual deploy answers %d (code %r) for a remote that is gone; the contract's "
                          "error statuses are 400/401/404/409/413" % (name, status, code))
        self.check(says_why(message), "%s: the manual deploy says why: %s" % (name, outcome))

    def notify(self, name):
        """A push notice with the remote gone starts nothing, and an error says why. (A notice of the commit that
        is live may be answered with the deployment that made it live, which the pusher then follows: that is not a
        new one.)"""
        newest = self.daemon.max_deployment_id()
        status, answer = self.daemon.notify_push(name, self.commits[-1], timeout=60)
        message = error_message(answer) if status != 202 else json.dumps(answer)[:300]
        started = [d["id"] for d in (answer or {}).get("deployments") or [] if d["id"] > newest] if status == 202 else []
        self.check(not started, "%s: a push notice with the remote gone starts no deployment (HTTP %d: %s)"
                   % (name, status, message))
        if status != 202:
            self.check(says_why(message), "%s: the push notice's error says why: HTTP %d %s" % (name, status, message))

    def polling(self):
        """Polling with the remote gone: the daemon keeps going and says why in its log."""
        time.sleep(2.5)
        text = self.daemon.log_text()
        for name in self.apps:
            # The daemon logs with the app as metadata: `app=NAME [Deploy] polling failed: why`.
            lines = [line for line in text.splitlines() if "app=%s " % name in line and "polling failed:" in line]
            self.check(bool(lines), "%s: polling with the remote gone is logged (%d lines)" % (name, len(lines)))
            if lines:
                message = lines[-1].split("polling failed:", 1)[-1].strip()
                self.check(says_why(message), "%s: the poll's log line says why (names the repository and the "
                           "reason): %r" % (name, message[:200]))
        self.note("a failed poll shows only in the daemon's log: the API (app status, deployments) does not show it")
        self.check(self.daemon.get("/healthz") == {"status": "ok"}, "the daemon still answers /healthz")
        for name, app in self.apps.items():
            current = self.daemon.get("/api/v1/apps/%s" % name)["current"]["id"]
            self.check(current == self.live_before[name], "%s: current is untouched (release %d, was %d)"
                       % (name, current, self.live_before[name]))
            self.check_invariants(name, app, "with the remote gone")

    def rollbacks(self, name, app):
        """Rollbacks need no remote: to a kept release (nothing is built), and to a pruned release (rebuilt from
        the mirror, which fetched that commit when it was deployed)."""
        releases = self.releases[name]
        kept = [r for r in releases if r["removed_at"] is None and r["id"] != self.live_before[name]]
        if kept:
            self.roll_back(name, kept[-1], "kept release %d" % kept[-1]["id"],
                           "kept release %d works with the remote gone" % kept[-1]["id"])
        pruned = [r for r in releases if r["removed_at"] is not None]
        if pruned:
            target = pruned[-1]
            self.roll_back(name, target, "pruned release %d" % target["id"],
                           "pruned release %d (commit %s, fetched into the mirror when it was deployed) is rebuilt "
                           "from the mirror with the remote gone" % (target["id"], target["commit"][:10]))
        self.daemon.wait_idle([name])
        self.check_invariants(name, app, "after the rollbacks")

    def roll_back(self, name, target, what, works):
        status, answer = self.daemon.request("POST", "/api/v1/apps/%s/rollback" % name, {"to": target["id"]})
        if status == 202:
            final = self.daemon.wait_deployment(answer["id"])
            self.check(final["status"] == "succeeded", "%s: a rollback to %s (deployment %d %s%s)"
                       % (name, works, final["id"], final["status"], ": " + final["error"] if final["error"] else ""))
        else:
            self.check(False, "%s: a rollback to %s with the remote gone answered %d: %s"
                       % (name, what, status, error_message(answer)))

    def come_back(self):
        """The repository comes back: the next push deploys both apps."""
        mirror = os.path.join(self.base, "state", "repos", "gone.git", "objects", "info", "alternates")
        if os.path.exists(mirror):
            self.note("the local app's mirror has objects/info/alternates -> %s: it stores no objects of its own"
                      % open(mirror).read().strip())
        shutil.move(self.moved, self.repo.bare)
        self.moved = None
        head = self.repo.change()
        _, output = self.repo.push(hook=True)
        deployed = re.findall(r"deployment (\d+) (succeeded|failed)", output)
        self.check(bool(deployed) and deployed[-1][1] == "succeeded",
                   "gone: after the repository is back, a git push deploys it (%s)"
                   % (" | ".join(output.strip().splitlines()[-3:])))
        try:
            self.daemon.wait_live("gonenet", head)
            ok = True
        except HarnessError as error:
            ok = False
            self.note(str(error))
        self.check(ok, "gonenet: after the repository is back, polling deploys the new head")
        self.daemon.wait_idle(list(self.apps))
        for name, app in self.apps.items():
            self.check_invariants(name, app, "at the end", after_success=True)
