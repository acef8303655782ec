"""Part 5: the state directory is lost, or an older copy of it is restored, next to a live deploy_to (issue 18).

Recovery must adopt what is on disk instead of deleting it: the live release stays live, and new deployment ids
start above every release on disk, so that no export ever lands on (or removes) an existing release. Then ten
deploys run, some failing in build and one failing its health check: no live release is lost and `current` never
dangles."""

import os
import shutil
import subprocess
import time

from fixture import Checks, FaultsDaemon, Repo, link_release, read_link, write_pipeline
from harness import HarnessError, web
from harness.log import out as log
from invariants import App, check_app

STATE_PIPELINE = """\
repository: {repository}
branch: main
deploy_to: {deploy_to}
keep_releases: 3
build:
  - name: compile
    run: mkdir -p _build && echo ok > _build/complete && if [ -f FAIL_BUILD ]; then echo failing on purpose; exit 1; fi
activate:
  - name: restart
    run: if [ ! -f FAIL_HEALTH ]; then echo "$SLIPWAY_DEPLOYMENT" > "$SLIPWAY_SHARED_DIR/live"; fi
health:
  command: test "$(cat "$SLIPWAY_SHARED_DIR/live")" = "$SLIPWAY_DEPLOYMENT"
  timeout: 2s
  interval: 100ms
"""

# What each of the ten deploys after the state change does: it succeeds, fails in build, or fails its health check
# (and is rolled back by itself). The last one succeeds, so that the full invariants apply at the end.
PLAN = ["ok", "build", "ok", "health", "ok", "build", "ok", "ok", "build", "ok"]


def lost_state(ctx):
    result = {"status": "ok", "cases": []}
    log("lost state:")
    for key, title, restore in [("deleted", "the state directory is deleted", False),
                                ("restored", "an older copy of the state directory is restored", True)]:
        checks = Checks(ctx, "lost state")
        result["cases"].append((title, checks))
        log("- " + title)
        try:
            StateCase(ctx, key, checks, restore).run()
        except HarnessError as error:
            checks.check(False, "could not complete the scenario: %s" % error)
        if checks.failed():
            result["status"] = "violations"
    return result


class StateCase:
    def __init__(self, ctx, key, checks, restore):
        self.ctx = ctx
        self.checks = checks
        self.restore = restore
        self.base = os.path.join(ctx.root, "state-" + key)
        self.repo = Repo(ctx, "state" + key, 40, os.path.join(self.base, "git"))
        pipelines = os.path.join(self.base, "pipelines")
        os.makedirs(pipelines)
        self.deploy_to = os.path.join(self.base, "deploy")
        self.state = os.path.join(self.base, "state")
        write_pipeline(os.path.join(pipelines, "app.yml"),
                       STATE_PIPELINE.format(repository=self.repo.bare, deploy_to=self.deploy_to))
        self.app = App("app", self.deploy_to, self.repo, {"build": 1}, 3)
        self.daemon = FaultsDaemon(ctx, "state-" + key, pipelines, self.state)

    def check(self, ok, text):
        return self.checks.check(ok, text)

    def link(self):
        return link_release(read_link(os.path.join(self.deploy_to, "current")))

    def on_disk(self):
        releases = os.path.join(self.deploy_to, "releases")
        return sorted(int(n) for n in os.listdir(releases) if n.isdigit()) if os.path.isdir(releases) else []

    def deploy(self, outcome="ok"):
        extra = {"FAIL_BUILD": "1\n"} if outcome == "build" else {"FAIL_HEALTH": "1\n"} if outcome == "health" else {}
        self.repo.change(extra=extra)
        self.repo.push(hook=False)
        status, answer = self.daemon.notify_push("app", self.repo.head(), timeout=60)
        if status != 202 or not (answer or {}).get("deployments"):
            raise HarnessError("POST /hooks/push answered %d: %s" % (status, web.error_message(answer)))
        deployment = self.daemon.wait_deployment(answer["deployments"][0]["id"], 90)
        if deployment is None:
            raise HarnessError("deployment %d did not finish" % answer["deployments"][0]["id"])
        self.daemon.wait_idle(["app"])
        return deployment

    def run(self):
        try:
            self.daemon.start()
            self.daemon.wait_live("app", self.repo.head(), timeout=90)  # the catch-up at start-up deploys it
            self.deploy()
            backup = None
            if self.restore:
                backup = self.copy_of_state()
                self.deploy()
                self.deploy()
            before = self.link()
            before_disk = self.on_disk()
            self.daemon.stop()
            shutil.rmtree(self.state)
            if backup:
                shutil.copytree(backup, self.state)
            self.daemon.start()
            self.daemon.wait_idle(["app"])
            self.after_the_start(before, before_disk)
            self.ten_deploys(max(before_disk))
        finally:
            if self.daemon.process:
                self.daemon.stop()
            self.ctx.end_step_processes(self.base)

    def copy_of_state(self):
        """A copy of the state as a backup would have it: taken with the daemon stopped, then started again."""
        self.daemon.stop()
        backup = os.path.join(self.base, "state-backup")
        shutil.copytree(self.state, backup)
        self.daemon.start()
        self.daemon.wait_idle(["app"])
        return backup

    def after_the_start(self, before, before_disk):
        """The live release is still live: the start-up catch-up does not deploy the branch head, which a restored
        store had not seen, since it is live already. Nothing on disk was removed but what retention removes."""
        recent = self.daemon.get("/api/v1/apps/app/deployments?limit=5")["deployments"]
        caught_up = [d for d in recent if d["trigger"] == "catch_up" and d["id"] > max(before_disk)]
        expected = caught_up[0]["id"] if caught_up and caught_up[0]["status"] == "succeeded" else before
        # The branch head is the live release's commit: the last deploy before the stop succeeded.
        self.check(not caught_up, "the start-up catch-up does not deploy the branch head again, which is live "
                   "already (%s)" % ("deployment %d, %s" % (caught_up[0]["id"], caught_up[0]["status"])
                                     if caught_up else "it deployed nothing"))
        link = self.link()
        api = (self.daemon.get("/api/v1/apps/app").get("current") or {}).get("id")
        self.check(link == expected and os.path.isdir(os.path.join(self.deploy_to, "releases", str(link))),
                   "after the start, current links to release %s (it links to %s)" % (expected, link))
        self.check(api == expected, "the API shows release %s live (it says %s)" % (expected, api))
        now = self.on_disk()
        removed = sorted(set(before_disk) - set(now))
        newest = sorted(now, reverse=True)[:self.app.keep]
        by_retention = all(r < min(newest) for r in removed) and (not removed or caught_up)
        self.check(before in now and by_retention,
                   "the release that was live (%s) is still on disk, and nothing else was removed but by retention "
                   "(before: %s, now: %s)" % (before, before_disk, now))
        kept = sorted(r["id"] for r in self.daemon.get("/api/v1/apps/app/releases")["releases"])
        self.check(set(before_disk) - set(removed) <= set(kept),
                   "the releases found on disk are adopted as kept releases (%s)" % kept)

    def ten_deploys(self, highest_before):
        lost = []
        dangling = []
        for i, outcome in enumerate(PLAN, 1):
            live_before = self.link()
            deployment = self.deploy(outcome)
            link = self.link()
            expected = "succeeded" if outcome == "ok" else "failed"
            if deployment["status"] != expected:
                self.check(False, "deploy %d (%s) ended %s: %s" % (i, outcome, deployment["status"],
                                                                  deployment["error"]))
            if link is None or not os.path.isdir(os.path.join(self.deploy_to, "releases", str(link))):
                dangling.append("after deploy %d current -> %s" % (i, link))
            if outcome != "ok" and link != live_before:
                lost.append("deploy %d failed (%s) and current moved from %s to %s" % (i, outcome, live_before, link))
            if outcome != "ok" and not os.path.isdir(os.path.join(self.deploy_to, "releases", str(live_before))):
                lost.append("deploy %d failed (%s) and release %s, which was live, is gone" % (i, outcome, live_before))
            if deployment["id"] <= highest_before:
                self.check(False, "deployment %d reuses an id at or below the highest release on disk (%d)"
                           % (deployment["id"], highest_before))
        self.check(not lost, "0 live releases lost over 10 deploys (%d failing)%s"
                   % (sum(1 for o in PLAN if o != "ok"), ": " + "; ".join(lost) if lost else ""))
        self.check(not dangling, "current never dangled%s" % (": " + "; ".join(dangling) if dangling else ""))
        problems = check_app(self.daemon, self.app, after_success=True)
        self.check(not problems, "the invariants hold at the end%s" % (": " + "; ".join(problems) if problems else ""))


# ----------------------------------------------------------------------------------------------------------------
# The state filesystem fills at every phase

FULL_PIPELINE = """\
repository: {repository}
branch: main
deploy_to: {deploy_to}
keep_releases: 2
build:
  - name: compile
    run: sleep 0.6; mkdir -p _build && echo ok > _build/complete
test:
  - sleep 0.6
migrate:
  - sleep 0.6
activate:
  - name: restart
    run: sleep 0.6; echo "$SLIPWAY_DEPLOYMENT" > "$SLIPWAY_SHARED_DIR/live"
health:
  command: sleep 0.3; test "$(cat "$SLIPWAY_SHARED_DIR/live")" = "$SLIPWAY_DEPLOYMENT"
  timeout: 5s
  interval: 100ms
"""

FULL_PHASES = ["build", "test", "migrate", "activate", "health"]


def state_full(ctx):
    """The state directory alone on a 4 MiB tmpfs, filled while a deployment is in each phase in turn: no release
    goes live without its activate steps and health check, and once the space is back and the daemon restarts, the
    link and the store agree."""
    checks = Checks(ctx, "state full")
    result = {"status": "ok", "cases": [("the state filesystem fills in each phase", checks)]}
    log("state disk full:")
    base = os.path.join(ctx.root, "state-full")
    mnt = os.path.join(base, "state")
    failure = ctx.mount_tmpfs(mnt, size="4m")
    if failure:
        checks.note("SKIPPED: cannot mount a tmpfs (%s)" % failure)
        result["status"] = "skipped"
        return result
    repo = Repo(ctx, "statefull", 40, os.path.join(base, "git"))
    pipelines = os.path.join(base, "pipelines")
    os.makedirs(pipelines)
    deploy_to = os.path.join(base, "deploy")
    write_pipeline(os.path.join(pipelines, "full.yml"), FULL_PIPELINE.format(repository=repo.bare, deploy_to=deploy_to))
    app = App("full", deploy_to, repo, {"build": 1, "test": 1, "migrate": 1}, 2)
    daemon = FaultsDaemon(ctx, "state-full", pipelines, mnt)
    filler = os.path.join(mnt, "filler")
    try:
        daemon.start()
        # The start-up catch-up deploys the branch head; the app looks idle until it has queued that deployment.
        daemon.wait_live("full", repo.head(), timeout=90)
        daemon.wait_idle(["full"], timeout=90)
        for phase in FULL_PHASES:
            fill_during(ctx, checks, daemon, app, repo, phase, filler)
    except HarnessError as error:
        checks.check(False, "could not complete the scenario: %s" % error)
    finally:
        if daemon.process:
            daemon.stop()
        ctx.end_step_processes(base)
        ctx.unmount(mnt)
    if checks.failed():
        result["status"] = "violations"
    return result


def fill_during(ctx, checks, daemon, app, repo, phase, filler):
    live_before = link_release(read_link(os.path.join(app.deploy_to, "current")))
    repo.change()
    repo.push(hook=False)
    status, answer = daemon.notify_push("full", repo.head(), timeout=60)
    if status != 202 or not (answer or {}).get("deployments"):
        raise HarnessError("POST /hooks/push answered %d: %s" % (status, web.error_message(answer)))
    deployment_id = answer["deployments"][0]["id"]
    deadline = time.monotonic() + 60
    seen = None
    while time.monotonic() < deadline:
        seen = daemon.get("/api/v1/deployments/%d" % deployment_id)
        if seen["phase"] == phase or seen["status"] not in ("queued", "running"):
            break
        time.sleep(0.02)
    if seen is None or seen["phase"] != phase:
        checks.note("%s: the deployment was not seen in %s (it was %s/%s)"
                    % (phase, phase, seen and seen["status"], seen and seen["phase"]))
    subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=64k"], capture_output=True)
    # It ends by itself (failed, or succeeded if it had written all it needed), or stays running on record if even
    # its outcome could not be written; either way the space comes back, and a restart brings the rest in line.
    try:
        ended = daemon.wait_deployment(deployment_id, 15)
    except HarnessError:
        ended = None
    os.unlink(filler)
    daemon.stop()
    daemon.start()
    daemon.wait_idle(["full"], timeout=90)
    after = daemon.get("/api/v1/deployments/%d" % deployment_id)
    link = link_release(read_link(os.path.join(app.deploy_to, "current")))
    shared_live = open(os.path.join(app.deploy_to, "shared", "live")).read().strip()
    checks.note("%s: deployment %d ended %s before the restart, %s after it (%r); current %s -> %s"
                % (phase, deployment_id, ended and ended["status"], after["status"], after["error"], live_before,
                   link))
    if link == deployment_id:
        # The activate step writes the mark and the health check tests it, so a live release whose mark is its own
        # went through both, even when the daemon could not record that it succeeded (it is then `interrupted`).
        checks.check(after["status"] in ("succeeded", "interrupted") and shared_live == str(deployment_id),
                     "%s: release %d is live only after its activate step and health check (status %s, the "
                     "activate step marked %s)" % (phase, deployment_id, after["status"], shared_live))
    else:
        checks.check(link == live_before or (link is not None and link > deployment_id),
                     "%s: current stayed on release %s (it links to %s)" % (phase, live_before, link))
    problems = check_app(daemon, app)
    checks.check(not problems, "%s: the link and the store agree after the restart%s"
                 % (phase, ": " + "; ".join(problems) if problems else ""))
