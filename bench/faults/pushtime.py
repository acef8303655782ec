"""Part 4: the truth at push time (issue 16). A push made while the daemon is down is deployed when it starts
(trigger catch_up); a second daemon on the same state directory exits at once and touches nothing; a gated push
whose deployment a SIGKILL of the daemon cuts short is refused, and current stays on the release that was live."""

import os
import subprocess
import time

from fixture import Checks, FaultsDaemon, Repo, install_hook, link_release, pipeline_head, read_link, write_pipeline
from harness import HarnessError, ports, processes
from harness.log import out as log
from invariants import App, check_app

# A step waits while the commit's HOLD file names its phase: it writes its shell's pid to held-<deployment> in the
# shared folder, then waits for go-<deployment> there, which the harness makes (or never makes, and kills).
HOLD = ('if [ "$(cat HOLD 2>/dev/null)" = "$SLIPWAY_PHASE" ]; then echo $$ > "$SLIPWAY_SHARED_DIR/.held" && '
        'mv "$SLIPWAY_SHARED_DIR/.held" "$SLIPWAY_SHARED_DIR/held-$SLIPWAY_DEPLOYMENT"; '
        'while [ ! -f "$SLIPWAY_SHARED_DIR/go-$SLIPWAY_DEPLOYMENT" ]; do sleep 0.05; done; fi')

PUSH_STEPS = """\
build:
  - name: compile
    run: mkdir -p _build && cp VERSION _build/version; {hold}; echo ok > _build/complete
test:
  - name: unit
    run: {hold}; test -f _build/complete
activate:
  - name: restart
    run: {hold}; echo "$SLIPWAY_DEPLOYMENT" > "$SLIPWAY_SHARED_DIR/live"
health:
  command: {hold}; test "$(cat "$SLIPWAY_SHARED_DIR/live")" = "$SLIPWAY_DEPLOYMENT"
  timeout: 10s
  interval: 100ms
"""

PUSH_BUILD_STEPS = {"build": 1, "test": 1}

# The moments a gated push's deployment is killed at, in turn.
GATE_PHASES = ["build", "test", "activate", "health"]

# How long a daemon that has just started gets to deploy something by itself before "nothing" is believed.
SETTLE_S = 1.0

# Files of the state that the first daemon may write while the second one tries to start.
LIVE_STATE_FILES = ("slipway.sqlite", "slipway.sqlite-wal", "slipway.sqlite-shm")


def push_time(ctx):
    log("truth at push time:")
    part = PushTime(ctx)
    part.run()
    failed = any(checks.failed() for _, checks in part.cases)
    return {"status": "violations" if failed else "ok", "cases": part.cases, "rounds": part.rounds}


def tail(output, lines=4):
    return " | ".join(output.strip().splitlines()[-lines:])


class PushTime:
    def __init__(self, ctx):
        self.ctx = ctx
        self.base = os.path.join(ctx.root, "push")
        self.down = Checks(ctx, "daemon down")
        self.second = Checks(ctx, "second daemon")
        self.gate = Checks(ctx, "gated kill")
        self.cases = [("A push while the daemon is down (post-receive hook, catch-up at start-up)", self.down),
                      ("A second daemon on the same state directory", self.second),
                      ("SIGKILL during a gated push (pre-receive hook)", self.gate)]
        self.rounds = []
        self.daemon = None

    def run(self):
        try:
            self.setup()
            self.daemon_down("SIGKILL", pushes=1)
            self.daemon_down("SIGTERM", pushes=2)
            self.second_daemon()
            for number in range(self.ctx.args.gate_kills):
                self.gated_kill(number + 1, GATE_PHASES[number % len(GATE_PHASES)])
        except (HarnessError, subprocess.TimeoutExpired, OSError) as error:
            self.gate.check(False, "could not complete the push-time scenarios: %s" % error)
        finally:
            if self.daemon:
                self.daemon.stop()
            leftovers = self.ctx.end_step_processes(self.base)
            self.gate.check(not leftovers, "no step process is left after the daemon's graceful stop%s" % (
                ": " + "; ".join("%d %s" % (p["pid"], p["cmdline"][:50]) for p in leftovers) if leftovers else ""))

    # ------------------------------------------------------------------------------------------------------------
    # The apps and the daemon

    def setup(self):
        """Two apps on one daemon: late (the post-receive hook) and gated (the pre-receive hook)."""
        ctx = self.ctx
        pipelines = os.path.join(self.base, "pipelines")
        os.makedirs(pipelines)
        self.apps = {}
        self.repos = {}
        for name in ("late", "gated"):
            repo = self.repos[name] = Repo(ctx, name, 60, os.path.join(self.base, "git"))
            app = self.apps[name] = App(name, os.path.join(self.base, "deploy", name), repo, PUSH_BUILD_STEPS, 3)
            write_pipeline(os.path.join(pipelines, name + ".yml"),
                           pipeline_head(repo.bare, app.deploy_to, app.keep) + PUSH_STEPS.format(hold=HOLD))
        self.daemon = FaultsDaemon(ctx, "push", pipelines, os.path.join(self.base, "state"))
        self.daemon.start()
        self.install_hooks()
        # The daemon has never seen either branch: its catch-up at start-up deploys both heads.
        for name, repo in self.repos.items():
            head = repo.head()
            first = self.daemon.wait_deployment_of(name, lambda d: d["commit"] == head)
            if not first or first["status"] != "succeeded":
                raise HarnessError("%s: the first deployment (the catch-up at start-up) did not succeed: %s"
                                   % (name, first and "%s: %s" % (first["status"], first["error"])))
        log("  setup done: late (post-receive hook) and gated (pre-receive hook) are live")

    def install_hooks(self):
        install_hook(self.ctx, self.repos["late"].bare, "late", self.daemon.url)
        install_hook(self.ctx, self.repos["gated"].bare, "gated", self.daemon.url, gate=True)

    def restart(self):
        if self.daemon.start():
            self.install_hooks()

    def new_deployments(self, after_id):
        return self.daemon.query('SELECT id, app, "trigger", [commit], status FROM deployment WHERE id > ? '
                                 "ORDER BY id", (after_id,))

    def nothing_by_itself(self, checks, after_id, when):
        """A daemon that has just started, with nothing new to deploy, deploys nothing within SETTLE_S."""
        time.sleep(SETTLE_S)
        extra = self.new_deployments(after_id)
        checks.check(not extra, "%s, the daemon deploys nothing by itself%s" % (when, "".join(
            "; deployment %d of %s (trigger %s, commit %s, %s)" % (d["id"], d["app"], d["trigger"],
                                                                  d["commit"][:10], d["status"]) for d in extra)))
        self.daemon.wait_idle(list(self.apps))

    def check_invariants(self, checks, when, after_success=False):
        for name, app in self.apps.items():
            for problem in check_app(self.daemon, app, after_success=after_success and name == "late"):
                checks.check(False, "%s: invariant %s: %s" % (name, when, problem))

    # ------------------------------------------------------------------------------------------------------------
    # 1. A push while the daemon is down

    def daemon_down(self, how, pushes):
        """The daemon is stopped (SIGKILL or SIGTERM); pushes through the post-receive hook are accepted and say
        they are deployed when it starts; at start-up the newest head is deployed (catch_up), once."""
        checks, daemon, repo = self.down, self.daemon, self.repos["late"]
        daemon.wait_idle(list(self.apps))
        base_id = daemon.max_deployment_id()
        if how == "SIGKILL":
            daemon.kill9()
        else:
            status = daemon.stop()
            checks.check(status == 0, "%s: the daemon stops with exit status 0 (it was %s)" % (how, status))
        for _ in range(pushes):
            head = repo.change()
            rc, output = repo.push(hook=True)
            checks.check(rc == 0 and "is deployed when the daemon starts" in output,
                         "%s: a push with the daemon down is accepted (exit %d) and says it is deployed when the "
                         "daemon starts (%s)" % (how, rc, tail(output, 2)))
            checks.check(repo.branch_head() == head, "%s: the branch moved to the pushed %s" % (how, head[:10]))
        self.restart()
        caught = daemon.wait_deployment_of("late", lambda d: d["id"] > base_id)
        checks.check(caught is not None and (caught["commit"], caught["trigger"], caught["status"]) == (
            head, "catch_up", "succeeded"),
            "%s: at start-up the branch head %s is deployed by itself with trigger catch_up and succeeds (%s)"
            % (how, head[:10], caught and "deployment %d of %s, trigger %s, %s%s" % (
                caught["id"], caught["commit"][:10], caught["trigger"], caught["status"],
                ": " + caught["error"] if caught["error"] else "") or "no deployment came in 60 s"))
        daemon.wait_idle(list(self.apps))
        new = self.new_deployments(base_id)
        checks.check(len(new) == 1, "%s: %d push(es) while down make exactly one deployment (%s)"
                     % (how, pushes, ", ".join("%d %s %s" % (d["id"], d["app"], d["trigger"]) for d in new)))
        self.check_invariants(checks, "after the catch-up (%s)" % how, after_success=True)
        settled = daemon.max_deployment_id()
        daemon.stop()
        self.restart()
        self.nothing_by_itself(checks, settled, "%s: after another restart with nothing new" % how)
        self.check_invariants(checks, "after the restart with nothing new (%s)" % how)

    # ------------------------------------------------------------------------------------------------------------
    # 2. A second daemon on the same state directory

    def second_daemon(self):
        """While the first daemon's build step waits, a second `slipway serve` on the same state (another port)
        exits 1 at once, naming the state directory and the first's pid; the step and the state are untouched."""
        checks, daemon, repo = self.second, self.daemon, self.repos["late"]
        daemon.wait_idle(list(self.apps))
        head = repo.change(extra={"HOLD": "build\n"})
        repo.push(hook=False)
        status, answer = daemon.notify_push("late", head)
        if status != 202 or not answer.get("deployments"):
            raise HarnessError("POST /hooks/push for late answered %d: %s" % (status, answer))
        deployment = answer["deployments"][0]["id"]
        held = self.wait_held(self.apps["late"], deployment)
        before = self.state_picture(deployment)
        link = os.path.join(self.base, "state-link")
        os.symlink(daemon.state, link)
        for spelling, state in (("the same path", daemon.state), ("a symlink to it", link)):
            self.try_second(spelling, state, (daemon.state, link))
        after = self.state_picture(deployment)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        checks.check(not changed, "the state is untouched by the second daemons%s" % (
            "" if not changed else ": changed: " + "; ".join("%s: %r -> %r" % (k, before.get(k), after.get(k))
                                                              for k in changed[:5])))
        alive = [p for p in processes.step_processes(self.base) if p["pid"] == held]
        checks.check(bool(alive) and daemon.alive(), "the first daemon is alive and its waiting build step (pid %d) "
                     "was not killed" % held)
        open(os.path.join(self.apps["late"].deploy_to, "shared", "go-%d" % deployment), "w").close()
        final = daemon.wait_deployment(deployment)
        steps = [(s["phase"], s["status"], s.get("exit_code")) for s in final.get("steps", [])]
        checks.check(final["status"] == "succeeded" and ("build", "succeeded", 0) in steps,
                     "released, the first daemon's deployment %d succeeds, its build step with exit 0 (%s%s; steps: "
                     "%s)" % (deployment, final["status"], ": " + final["error"] if final["error"] else "",
                              ", ".join("%s %s (exit %s)" % step for step in steps)))
        daemon.wait_idle(list(self.apps))
        self.check_invariants(checks, "after the second daemons", after_success=True)

    def try_second(self, spelling, state, names):
        """One second `slipway serve`: it exits 1 within 3 s, and says which daemon holds which state directory."""
        daemon = self.daemon
        argv = [self.ctx.slipway, "serve", "--pipelines", daemon.pipelines, "--state", state,
                "--port", str(ports.free_port())]
        started = time.monotonic()
        try:
            result = subprocess.run(argv, capture_output=True, text=True, env=self.ctx.daemon_env, timeout=15)
            rc, output = result.returncode, result.stdout + result.stderr
        except subprocess.TimeoutExpired as expired:
            rc, output = None, "still running after 15 s (killed): %s" % (expired.stdout or b"").decode()[-300:]
        elapsed = time.monotonic() - started
        said = ("is already running on the state directory" in output and "pid %d" % daemon.process.pid in output
                and any(name in output for name in names))
        self.second.check(rc == 1 and elapsed < 3 and said,
                          "a second daemon on %s (another port) exits 1 within 3 s (exit %s after %.2f s) naming "
                          "the state directory and the first's pid %d: %r"
                          % (spelling, rc, elapsed, daemon.process.pid, output.strip()[-300:]))

    def state_picture(self, deployment):
        """What the second daemon must not change: every file of the state (but the store's own files and the
        running deployment's log) with its size and time, and the store's deployments, steps and app states."""
        picture = {}
        skip = set(LIVE_STATE_FILES) | {os.path.join("logs", "%d.log" % deployment)}
        for base, dirs, names in os.walk(self.daemon.state):
            for name in dirs + names:
                full = os.path.join(base, name)
                relative = os.path.relpath(full, self.daemon.state)
                if relative not in skip:
                    st = os.lstat(full)
                    picture[relative] = "dir" if name in dirs else (st.st_size, st.st_mtime_ns)
        with open(os.path.join(self.daemon.state, "lock")) as f:
            picture["lock (content)"] = f.read()
        for table in ("deployment", "step", "app_state", "[release]"):
            picture["store: " + table] = repr(self.daemon.query("SELECT * FROM %s ORDER BY rowid" % table))
        for app in self.apps.values():
            picture["current of " + app.name] = read_link(os.path.join(app.deploy_to, "current"))
            picture["releases of " + app.name] = sorted(os.listdir(os.path.join(app.deploy_to, "releases")))
        return picture

    def wait_held(self, app, deployment, timeout=30):
        """The pid of the step that holds the deployment, once it waits."""
        path = os.path.join(app.deploy_to, "shared", "held-%d" % deployment)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    return int(f.read().strip())
            if self.daemon.get("/api/v1/deployments/%d" % deployment)["status"] not in ("queued", "running"):
                break
            time.sleep(0.01)
        state = self.daemon.get("/api/v1/deployments/%d" % deployment)
        raise HarnessError("deployment %d of %s never held (it is %s in %s: %s)"
                           % (deployment, app.name, state["status"], state["phase"], state["error"]))

    # ------------------------------------------------------------------------------------------------------------
    # 3. SIGKILL during a gated push

    def gated_kill(self, number, phase):
        """A gated push whose deployment waits in `phase`; SIGKILL of the daemon while it waits. The push is
        refused, the branch stays, current stays on the release live before; after a restart the deployment is
        interrupted and the next gated push is accepted."""
        kill = GatedKill(self, number, phase)
        kill.push_and_kill()
        kill.check_refused()
        kill.restart_and_check()
        kill.push_again()
        kill.finish()


class GatedKill:
    """One round of part 3."""

    def __init__(self, part, number, phase):
        self.part = part
        self.daemon = part.daemon
        self.checks = part.gate
        self.repo = part.repos["gated"]
        self.app = part.apps["gated"]
        self.label = "gated kill %d (%s)" % (number, phase)
        self.number, self.phase = number, phase
        self.current = os.path.join(self.app.deploy_to, "current")
        self.failures = len(part.ctx.violations)
        self.record = {"round": number, "phase": phase}

    def check(self, ok, text):
        return self.checks.check(ok, "%s: %s" % (self.label, text))

    def push_and_kill(self):
        daemon, repo = self.daemon, self.repo
        daemon.wait_idle(list(self.part.apps))
        self.old_head = repo.branch_head()
        self.live_before = link_release(read_link(self.current))
        base_id = daemon.max_deployment_id()
        self.head = repo.change(extra={"HOLD": self.phase + "\n"})
        output = os.path.join(self.part.ctx.root, "logs", "gated-push-%d.log" % self.number)
        pusher = repo.push_in_background(output)
        self.deployment = self.wait_started(base_id)
        self.part.wait_held(self.app, self.deployment)
        time.sleep(self.part.ctx.rng.uniform(0.0, 0.03))
        self.phase_at_kill = daemon.query("SELECT phase FROM deployment WHERE id = ?", (self.deployment,),
                                          copy=True)[0]["phase"]
        daemon.kill9()
        self.link_at_kill = link_release(read_link(self.current))
        try:
            self.push_exit = pusher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pusher.kill()
            self.push_exit = pusher.wait()
            self.check(False, "the gated push had not ended 30 s after the daemon was killed")
        self.part.ctx.procs.forget(pusher)
        with open(output, errors="replace") as f:
            self.push_output = f.read()

    def wait_started(self, base_id, timeout=30):
        """The gated push's deployment, once the daemon has made it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = [d for d in self.part.new_deployments(base_id) if d["app"] == "gated" and d["commit"] == self.head]
            if rows:
                return rows[-1]["id"]
            time.sleep(0.01)
        raise HarnessError("%s: the gated push of %s started no deployment in %d s" % (self.label, self.head[:10],
                                                                                         timeout))

    def check_refused(self):
        """The push is refused and says so; the branch has not moved; before the switch, current has not either."""
        self.check(self.push_exit != 0 and "the push is refused" in self.push_output,
                   "git push exits non-zero (%d) and says the push is refused (%s)"
                   % (self.push_exit, tail(self.push_output)))
        branch = self.repo.branch_head()
        self.check(branch == self.old_head, "the branch still points at %s (it points at %s)"
                   % (self.old_head[:10], (branch or "nothing")[:10]))
        if self.phase in ("build", "test"):
            self.check(self.link_at_kill == self.live_before, "right after the kill, current is still releases/%s "
                       "(it is releases/%s)" % (self.live_before, self.link_at_kill))
        self.record.update(deployment=self.deployment, hit=self.phase_at_kill, push_exit=self.push_exit,
                           link_at_kill=self.link_at_kill, live_before=self.live_before)

    def restart_and_check(self):
        """After a restart: the deployment is interrupted, its step is gone, current is the release live before the
        push (complete), and nothing deploys by itself."""
        part, daemon = self.part, self.daemon
        settled = daemon.max_deployment_id()
        part.restart()
        after = daemon.get("/api/v1/deployments/%d" % self.deployment)
        self.check(after["status"] == "interrupted", "after the restart, deployment %d is interrupted (it is %s)"
                   % (self.deployment, after["status"]))
        leftover = [p for p in processes.step_processes(part.base) if p["deployment"] == self.deployment]
        processes.kill_pids([p["pid"] for p in leftover])
        self.check(not leftover, "no process of its step outlived the restart%s" % "".join(
            "; pid %d: %s" % (p["pid"], p["cmdline"][:60]) for p in leftover))
        link = link_release(read_link(self.current))
        current = daemon.get("/api/v1/apps/gated").get("current") or {}
        self.check(link == self.live_before and current.get("commit") == self.old_head,
                   "after the restart, current is still the release live before the push, releases/%s of the "
                   "branch's %s (current -> releases/%s, of %s; at the kill it was releases/%s)"
                   % (self.live_before, self.old_head[:10], link, (current.get("commit") or "none")[:10],
                      self.link_at_kill))
        self.record.update(status_after=after["status"], link_after=link)
        part.nothing_by_itself(self.checks, settled, "%s: after the restart" % self.label)
        part.check_invariants(self.checks, "%s: after the restart" % self.label)

    def push_again(self):
        """The next gated push (without HOLD) deploys and is accepted."""
        head = self.repo.change()
        rc, output = self.repo.push(hook=True)
        current = self.daemon.get("/api/v1/apps/gated").get("current") or {}
        ok = self.check(rc == 0 and "the push is accepted" in output and self.repo.branch_head() == head
                        and current.get("commit") == head,
                        "the next gated push of %s deploys and is accepted (exit %d; branch %s; current %s; %s)"
                        % (head[:10], rc, (self.repo.branch_head() or "none")[:10],
                           (current.get("commit") or "none")[:10], tail(output, 2)))
        self.record["next_push"] = "accepted" if ok else "exit %d" % rc
        self.daemon.wait_idle(list(self.part.apps))
        self.part.check_invariants(self.checks, "%s: after the next push" % self.label)

    def finish(self):
        self.record["violations"] = len(self.part.ctx.violations) - self.failures
        self.part.rounds.append(self.record)
        log("  %s: deployment %s, killed in %s, push exit %s, current at the kill releases/%s, after the restart "
            "releases/%s (was releases/%s): %s" % (
                self.label, self.deployment, self.phase_at_kill, self.push_exit, self.link_at_kill,
                self.record.get("link_after"), self.live_before,
                "ok" if not self.record["violations"] else "%d VIOLATION(S)" % self.record["violations"]))
