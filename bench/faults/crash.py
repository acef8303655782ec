"""Part 1: SIGKILL at chosen phases of deploys and rollbacks, a restart on the same state, and the invariants."""

import collections
import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time

from fixture import FaultsDaemon, Repo, finished, install_hook, link_release, now_ms, read_link, write_pipeline
from harness import HarnessError, processes
from harness.log import out as log
from harness.web import error_message
from invariants import App, check_app

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
# The bench


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
        self.daemon = FaultsDaemon(ctx, "crash", self.pipelines, os.path.join(ctx.root, "crash", "state"))
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
        install_hook(self.ctx, self.repo.bare, "web", self.daemon.url)

    def restart(self):
        if self.daemon.start():
            self.install_hook()

    def notify_net(self, wait, strict=True):
        """POST /hooks/push for the git:// app, as its hook would; returns (deployment or None, ms). Not strict:
        an error answer is returned as (None, "HTTP <status>: <message>")."""
        head = self.repo.head()
        start = now_ms()
        status, answer = self.daemon.notify_push("net", head, timeout=30)
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
        head = self.repo.change()
        try:
            rc, output = self.repo.push(hook=True)
        except subprocess.TimeoutExpired:
            rc, output = -1, "git push did not finish in 120 s"
        match = re.findall(r"deployment (\d+) (succeeded|failed|interrupted|cancelled)", output)
        current = self.daemon.get("/api/v1/apps/web").get("current") or {}
        if not (bool(match) and match[-1][1] == "succeeded" and current.get("commit") == head):
            text = ("web: a git push of %s after the restart did not deploy it (push exit %d; current is %s; "
                    "push output: %s)" % (head[:10], rc, current.get("commit", "none")[:10],
                                          " | ".join(output.strip().splitlines()[-6:])))
            if not check:
                raise HarnessError(text)
            self.push_failure("%s: %s" % (round_label, text))
        if check:
            self.check_net_push(head, round_label)

    def push_failure(self, text):
        self.push_failures += 1
        self.ctx.violation("crash", text)

    def check_net_push(self, head, round_label):
        """The push notice for net deploys the same head; then both apps keep their invariants."""
        deployment, why = self.notify_net(wait=False, strict=False)
        if deployment is None:
            self.push_failure("%s: net: POST /hooks/push for %s started no deployment (%s)"
                              % (round_label, head[:10], why))
        else:
            final = self.daemon.wait_deployment(deployment["id"])
            if final["status"] != "succeeded":
                self.push_failure("%s: net: the push of %s did not deploy: deployment %d %s: %s"
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
        kill = Round(self, number, total, kind, phase)
        kill.prepare()
        kill.send()
        kill.wait_for_the_moment()
        kill.kill()
        kill.read_the_hit()
        kill.check_the_kill()
        kill.restart_and_check()
        kill.send_the_lost_notice_again()
        kill.finish()
        if number % 5 == 0 or number == total:
            self.push_check(round_label="after %s" % kill.label)

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
        leftovers = self.ctx.end_step_processes(os.path.join(self.ctx.root, "crash"))
        if leftovers:
            self.ctx.violation("crash", "step processes left after a graceful stop: %s"
                               % "; ".join("%d %s" % (p["pid"], p["cmdline"][:50]) for p in leftovers))


class Round:
    """One kill: a deploy or rollback is triggered, the daemon is killed with SIGKILL when it reaches the target
    phase, restarted on the same state, and checked."""

    def __init__(self, bench, number, total, kind, phase):
        self.bench = bench
        self.ctx = bench.ctx
        self.daemon = bench.daemon
        self.rng = bench.rng
        self.label = "kill %d/%d" % (number, total)
        self.number, self.total, self.kind, self.phase = number, total, kind, phase
        self.app = bench.net if phase == "mirror-fetch" else bench.web
        self.current = os.path.join(self.app.deploy_to, "current")
        self.trigger = None
        self.background = None
        self.responses = []
        self.refused = threading.Event()
        self.delay = 0.0
        self.seen = None
        self.victim = None
        self.problems = []

    def prepare(self):
        """Waits for quiet, picks the rollback target or makes the commit, and decides how to wait for the kill."""
        bench, daemon = self.bench, self.daemon
        daemon.wait_idle(["web", "net"])
        self.body = None
        if self.kind == "rollback":
            self.body = bench.rollback_body()
            if self.body is None:
                bench.push_check(check=False)
                self.body = bench.rollback_body()
        self.before_target = read_link(self.current)
        self.before_link = link_release(self.before_target)
        self.base_id = daemon.max_deployment_id()
        # Build rounds and deploy health rounds make that phase last 3 s, so that a process of the killed step is
        # still alive at the restart: recovery must end it. Every other build round (the first one included) kills
        # the moment the step's first process exists, before the store may have learnt its process group.
        build_sleep = self.phase == "build"
        if build_sleep:
            bench.build_rounds += 1
        self.at_spawn = build_sleep and bench.build_rounds % 2 == 1
        self.health_sleep = self.kind == "deploy" and self.phase == "health"
        extra = {"BUILD_SLEEP": "3\n"} if build_sleep else {"HEALTH_SLEEP": "3\n"} if self.health_sleep else None
        # Half the switch rounds watch the current link itself and kill the moment it moves: the rename is done,
        # the store has not been told yet.
        self.watch_link = self.phase == "switch" and self.rng.random() < 0.5
        if self.kind == "deploy":
            self.commit_and_push(extra)
        else:
            self.trigger = "rollback %s" % json.dumps(self.body)

    def commit_and_push(self, extra):
        repo = self.bench.repo
        repo.change(extra=extra)
        if self.app is self.bench.net:
            self.trigger = "hooks/push"
        else:
            self.trigger = self.rng.choice(["hooks/push", "manual", "git push"])
        if self.trigger == "git push":
            self.background = repo.push_in_background(
                os.path.join(self.ctx.root, "logs", "push-round-%d.log" % self.number))
        else:
            repo.push(hook=False)

    def send(self):
        """Sends the trigger's request from a thread (a `git push` is already under way)."""
        sender = threading.Thread(target=self.request, daemon=True)
        self.started = now_ms()
        sender.start()
        self.sender = sender

    def request(self):
        daemon = self.daemon
        try:
            if self.trigger == "hooks/push":
                self.responses.append(daemon.notify_push(self.app.name, self.bench.repo.head()))
            elif self.trigger == "manual":
                self.responses.append(daemon.request("POST", "/api/v1/apps/web/deploy", {}, timeout=20))
            elif self.kind == "rollback":
                self.responses.append(daemon.request("POST", "/api/v1/apps/web/rollback", self.body, timeout=20))
        except (OSError, http.client.HTTPException) as error:
            self.responses.append((None, str(error)))
        if self.responses and self.responses[-1][0] not in (None, 202):
            self.refused.set()

    def ours(self, deployment):
        return (deployment.get("app") == self.app.name and deployment.get("id", 0) > self.base_id
                and deployment.get("kind") == self.kind)

    def wait_for_the_moment(self):
        if self.phase == "mirror-fetch":
            # The watcher fetches over git:// (through the slow proxy) inside the request, before any deployment
            # exists: kill somewhere in that fetch.
            self.delay = self.rng.uniform(0.0, self.bench.fetch_ms * 1.1)
            time.sleep(self.delay / 1000.0)
        elif self.watch_link:
            self.wait_for_the_link()
        else:
            self.wait_for_the_phase()

    def wait_for_the_link(self):
        """Spins on readlink(current) from the phase before the switch on, until the link moves."""
        before_switch = "migrate" if self.kind == "deploy" else "fetch"

        def wanted(d):
            if not self.ours(d):
                return False
            return (d.get("status") == "running" and d.get("phase") == before_switch) or finished(d)
        self.seen = self.daemon.events.wait_for(wanted, timeout=30, abort=self.refused.is_set)
        deadline = time.monotonic() + (10 if self.seen and self.seen[1].get("status") == "running" else 0)
        spins = 0
        while read_link(self.current) == self.before_target:
            spins += 1
            if spins % 2000 == 0 and time.monotonic() > deadline:
                break
        self.delay = 0.0
        self.trigger += " (watching the link)"

    def wait_for_the_phase(self):
        """Follows the event stream until the deployment is in the target phase, then waits the random delay."""
        def wanted(d):
            if not self.ours(d):
                return False
            if d.get("status") == "running" and d.get("phase") == self.phase:
                return True
            return finished(d)  # it ended without us seeing the phase: kill anyway
        self.seen = self.daemon.events.wait_for(wanted, timeout=30, abort=self.refused.is_set)
        if self.refused.is_set():
            log("  note: the trigger was refused: %s" % (self.responses[-1],))
        low, high = DELAYS_MS[self.phase]
        self.delay = self.rng.uniform(low, high)
        if (self.at_spawn or self.health_sleep) and self.seen is not None and self.seen[1].get("status") == "running":
            # Wait for the step's (or the health command's) first process; count the delay from there.
            if self.at_spawn:
                self.trigger += " (at the step's start)"
                self.delay = 0.0
            deadline = time.monotonic() + 5
            while not processes.child_pids(self.daemon.process.pid) and time.monotonic() < deadline:
                pass
            self.seen = (now_ms(), self.seen[1])
        if self.seen is not None:
            remaining = self.seen[0] + self.delay - now_ms()
            if remaining > 0:
                time.sleep(remaining / 1000.0)

    def kill(self):
        self.killed_at = now_ms()
        self.daemon.kill9()
        self.bench.kills += 1
        self.sender.join(10)
        if self.background is not None:
            try:
                self.background.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.background.kill()
                self.background.wait()
            self.ctx.procs.forget(self.background)

    def read_the_hit(self):
        """What the kill hit, from the store as the daemon left it."""
        daemon = self.daemon
        new = daemon.query("SELECT id, kind, status, phase, [commit] FROM deployment WHERE id > ? AND app = ? "
                           "ORDER BY id", (self.base_id, self.app.name), copy=True)
        self.running_steps = daemon.query(
            "SELECT deployment_id, phase, name, process_group FROM step WHERE status = 'running' AND deployment_id > ?",
            (self.base_id,), copy=True)
        self.link_at_kill = link_release(read_link(self.current))
        if not new:
            watcher = self.phase == "mirror-fetch"
            self.hit = "fetch (watcher, before queueing)" if watcher else "before the deployment was queued"
            self.hit_detail = self.hit
            hit_kind = "watcher" if watcher else self.kind
        else:
            victim = self.victim = new[-1]
            hit_kind = victim["kind"]
            if victim["status"] == "running":
                self.hit = victim["phase"]
            elif victim["status"] == "queued":
                self.hit = "queued"
            else:
                self.hit = "after it ended (%s)" % victim["status"]
            self.hit_detail = self.hit
            step = self.steps_of(victim["id"])
            if step:
                self.hit_detail += " (step %s, process group %s)" % (step[0]["name"][:24], step[0]["process_group"])
        self.bench.hits[self.hit] += 1
        self.bench.hits_by_kind["%s:%s" % (hit_kind, self.hit)] += 1

    def steps_of(self, deployment_id):
        return [s for s in self.running_steps if s["deployment_id"] == deployment_id]

    def check_the_kill(self):
        """Deployment ids only grow; at the kill, current is the old release or the one being made live."""
        victim, bench = self.victim, self.bench
        if victim is None:
            return
        if victim["id"] <= bench.max_id:
            self.problems.append("deployment id %d is not greater than an earlier one (%d)" % (victim["id"], bench.max_id))
        bench.max_id = max(bench.max_id, victim["id"])
        allowed = {self.before_link, victim["id"]}
        if self.kind == "rollback" and victim["kind"] == "rollback":
            target = self.daemon.query("SELECT target_release FROM deployment WHERE id = ?", (victim["id"],),
                                       copy=True)
            allowed = {self.before_link, target[0]["target_release"] if target else None}
        if self.link_at_kill not in allowed:
            self.problems.append("at the kill, current -> releases/%s: neither the release live before (%s) nor "
                                 "the one deployment %d was making live" % (self.link_at_kill, self.before_link,
                                                                             victim["id"]))

    def restart_and_check(self):
        """Restarts on the same state (recovery runs before the daemon listens) and checks what recovery did."""
        restart_started = now_ms()
        self.bench.restart()
        self.restart_ms = now_ms() - restart_started
        link_after = link_release(read_link(self.current))
        if link_after != self.link_at_kill:
            self.problems.append("start-up recovery moved current from releases/%s to releases/%s"
                                 % (self.link_at_kill, link_after))
        victim = self.victim
        if victim is not None and victim["status"] == "running":
            self.check_interrupted(victim)
        self.daemon.wait_idle(["web", "net"])
        self.ctx.procs.reap_orphans()
        if victim is not None and victim["status"] == "queued":
            after = self.daemon.get("/api/v1/deployments/%d" % victim["id"])
            if after["status"] != "succeeded":
                self.problems.append("deployment %d was queued at the kill; after the restart it ended %s: %s"
                                     % (victim["id"], after["status"], after.get("error")))

    def check_interrupted(self, victim):
        """A deployment running at the kill is interrupted, and its step processes are gone."""
        leftover = [p for p in processes.step_processes(self.ctx.root) if p["deployment"] == victim["id"]]
        if leftover:
            self.problems.append(
                "step processes of interrupted deployment %d outlived the restart: %s (the store had process "
                "group %s for the running step)" % (
                    victim["id"], "; ".join("pid %d: %s" % (p["pid"], p["cmdline"][:60]) for p in leftover),
                    ", ".join(str(s["process_group"]) for s in self.steps_of(victim["id"])) or "none"))
            processes.kill_pids([p["pid"] for p in leftover])
        after = self.daemon.get("/api/v1/deployments/%d" % victim["id"])
        if after["status"] != "interrupted":
            self.problems.append("deployment %d was running at the kill; after the restart it is %s, not interrupted"
                                 % (victim["id"], after["status"]))

    def send_the_lost_notice_again(self):
        """A notice lost with the crash: the daemon's catch-up at start-up deploys its head (it was never deployed),
        or else the same push again must deploy it."""
        if self.phase != "mirror-fetch" or self.victim is not None:
            return
        daemon = self.daemon
        caught = daemon.query("SELECT id FROM deployment WHERE app = 'net' AND id > ? AND [commit] = ? ORDER BY id",
                              (self.base_id, self.bench.repo.head()))
        if caught:
            self.trigger += " (caught up at start-up)"
            final = daemon.wait_deployment(caught[-1]["id"])
            if final["status"] != "succeeded":
                self.problems.append("the catch-up at start-up of the lost push: deployment %d %s: %s"
                                     % (final["id"], final["status"], final["error"]))
            daemon.wait_idle(["web", "net"])
            return
        deployment, why = self.bench.notify_net(wait=False, strict=False)
        if deployment is None and isinstance(why, str):
            self.problems.append("the crash hit the watcher's fetch; sending the same push again after the restart "
                                 "fails: %s" % why)
        elif deployment is None:
            seen_head = daemon.query("SELECT last_seen_head FROM app_state WHERE app = 'net'")
            self.problems.append(
                "the crash hit the watcher's fetch before any deployment was queued; sending the same push "
                "again after the restart deploys nothing (last_seen_head %s = the pushed head): the push is lost"
                % ((seen_head[0]["last_seen_head"] or "")[:10] if seen_head else "?"))
        else:
            final = daemon.wait_deployment(deployment["id"])
            if final["status"] != "succeeded":
                self.problems.append("the push sent again after the restart: deployment %d %s: %s"
                                     % (final["id"], final["status"], final["error"]))
        daemon.wait_idle(["web", "net"])

    def finish(self):
        """Checks both apps, records the violations and the round."""
        # The git:// app's start-up catch-up fetches through the slow proxy before it queues anything, so an idle
        # look may come before its deployment exists: the invariants are checked once the daemon has stayed idle
        # across a second look, a second later.
        self.daemon.wait_idle(["web", "net"])
        time.sleep(1.0)
        self.daemon.wait_idle(["web", "net"])
        for each in (self.bench.web, self.bench.net):
            for problem in check_app(self.daemon, each):
                self.problems.append("%s: %s" % (each.name, problem))
        for problem in self.problems:
            self.ctx.violation("crash", "%s (target %s:%s, hit %s): %s"
                               % (self.label, self.kind, self.phase, self.hit_detail, problem))
        victim = self.victim["id"] if self.victim else None
        self.bench.rounds.append({
            "round": self.number, "target": "%s:%s" % (self.kind, self.phase), "trigger": self.trigger,
            "delay_ms": round(self.delay, 1), "hit": self.hit_detail, "deployment": victim,
            "after_ms": round(self.killed_at - (self.seen[0] if self.seen else self.started), 1),
            "restart_ms": round(self.restart_ms), "violations": len(self.problems)})
        log("  %s target=%s:%s trigger=%s hit=%s deployment=%s delay=%.1fms %s"
            % (self.label, self.kind, self.phase, self.trigger, self.hit_detail, victim or "-", self.delay,
               "ok" if not self.problems else "%d VIOLATION(S)" % len(self.problems)))
