"""PostgreSQL as the store, away and back (issue 19): the database stopped and started again while a deployment
builds, for less and for more than a deployment's lease; stopped during a burst of signed deliveries; and the
daemon SIGKILLed mid-deploy. What must hold: nothing answered 2xx is lost, nothing but the documented 503 among
the errors, the daemon recovers by itself, no release goes live without its steps, the link and the store agree,
and no deployment runs its build twice."""

import contextlib
import hashlib
import hmac
import json
import os
import re
import subprocess
import threading
import time

from fixture import MARK_LIVE, Checks, FaultsDaemon, Repo, link_release, read_link, write_pipeline
from harness import HarnessError
from harness.log import out as log
from harness.postgres import PostgresServer
from invariants import App, check_app

SECRET = "faults-secret"

# The build records each deployment that runs it, so that a build run twice shows; its length is the case's.
PIPELINE = """\
repository: {repository}
branch: main
deploy_to: {deploy_to}
keep_releases: 2
webhook_secret: {secret}
build:
  - name: compile
    run: echo "$SLIPWAY_DEPLOYMENT" >> "$SLIPWAY_SHARED_DIR/builds"; {build}; mkdir -p _build && echo ok > _build/complete
""" + MARK_LIVE

# A deployment's lease runs 30 s past its last renewal (Deploy/Run/DeploymentLease.swift).
LEASE_SECONDS = 30


class PostgresDaemon(FaultsDaemon):
    """`slipway serve --store postgres://…`, whose store the checks read through psql."""

    def __init__(self, ctx, name, pipelines, state, server, url):
        super().__init__(ctx, name, pipelines, state)
        self.args += ["--store", url]
        self.psql = server.psql
        self.store_url = url

    def query(self, sql, args=(), copy=False):
        """The rows of `sql` (SQLite's spelling: `?` parameters and [quoted] names, as the shared checks write it),
        each a dict; numbers, booleans and NULLs are read back as Python's."""
        values = iter(args)

        def literal(_match):
            value = next(values)
            if isinstance(value, bool) or isinstance(value, int):
                return str(int(value))
            return "'" + str(value).replace("'", "''") + "'"

        sql = re.sub(r"\?", literal, re.sub(r"\[(\w+)\]", r'"\1"', sql))
        result = subprocess.run(
            [self.psql, self.store_url, "-X", "-q", "-A", "-F", "\x1f", "-P", "footer=off", "-P",
             "null=\x01", "-c", sql], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise HarnessError("psql: %s: %s" % (sql, result.stderr.strip()))
        lines = result.stdout.split("\n")
        header = lines[0].split("\x1f")
        return [dict(zip(header, map(typed, line.split("\x1f")))) for line in lines[1:] if line]


def typed(text):
    if text == "\x01":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return {"t": True, "f": False}.get(text, text)


def delivery(daemon, repo, delivery_id):
    """A signed GitHub push delivery of the branch head: (status, answer), or (None, the error) when the daemon
    could not be reached."""
    head = repo.head()
    body = json.dumps({
        "ref": "refs/heads/main", "before": "0" * 40, "after": head,
        "repository": {"full_name": "faults/pg", "clone_url": repo.bare, "html_url": "https://example.com/faults/pg"},
        "pusher": {"name": "faults"}, "head_commit": {"id": head, "message": "change"},
    }).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    try:
        return daemon.request("POST", "/hooks/github", body, headers={
            "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": "sha256=" + signature}, timeout=30)
    except OSError as error:
        return None, str(error)


def error_code(answer):
    return ((answer or {}).get("error") or {}).get("code") if isinstance(answer, dict) else None


class PostgresFaults:
    def __init__(self, ctx):
        self.ctx = ctx
        self.base = os.path.join(ctx.root, "postgres")
        self.result = {"status": "ok", "cases": []}

    def run(self):
        self.server = PostgresServer()
        try:
            self.away_mid_deploy(outage=3, build="sleep 6", title="PostgreSQL away for 3 s while a build runs")
            self.away_mid_deploy(outage=LEASE_SECONDS + 10, build="sleep %d" % (LEASE_SECONDS + 25),
                                 title="PostgreSQL away for %d s, longer than a deployment's lease, while a build "
                                       "runs" % (LEASE_SECONDS + 10))
            self.away_mid_burst()
            self.killed_mid_deploy()
        finally:
            self.server.remove()
        if any(checks.failed() for _, checks in self.result["cases"]):
            self.result["status"] = "violations"
        return self.result

    def app(self, name, build):
        """An app of its own, on a database of its own (a fresh schema per case), with its daemon started."""
        base = os.path.join(self.base, name)
        repo = Repo(self.ctx, name, 20, os.path.join(base, "git"))
        pipelines = os.path.join(base, "pipelines")
        os.makedirs(pipelines)
        deploy_to = os.path.join(base, "deploy")
        write_pipeline(os.path.join(pipelines, "%s.yml" % name),
                       PIPELINE.format(repository=repo.bare, deploy_to=deploy_to, secret=SECRET, build=build))
        app = App(name, deploy_to, repo, {"build": 1}, 2)
        daemon = PostgresDaemon(self.ctx, "pg-" + name, pipelines, os.path.join(base, "state"), self.server,
                                self.server.fresh_database(name))
        daemon.start()
        daemon.wait_live(name, repo.head(), timeout=90)
        return base, repo, app, daemon

    def builds(self, app):
        path = os.path.join(app.deploy_to, "shared", "builds")
        return [int(line) for line in open(path).read().split()] if os.path.exists(path) else []

    def wait_phase(self, daemon, deployment_id, phase, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = daemon.get("/api/v1/deployments/%d" % deployment_id)
            if seen["phase"] == phase and seen["status"] == "running":
                return seen
            if seen["status"] not in ("queued", "running"):
                raise HarnessError("deployment %d ended %s before %s" % (deployment_id, seen["status"], phase))
            time.sleep(0.05)
        raise HarnessError("deployment %d did not reach %s in %d s" % (deployment_id, phase, timeout))

    def wait_recovered(self, daemon, timeout=60):
        """Until the API answers from the store again; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                status, _ = daemon.request("GET", "/api/v1/apps", timeout=10)
                if status == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.1)
        raise HarnessError("the API did not answer from the store %d s after PostgreSQL was back" % timeout)

    def wait_run_stopped(self, daemon, app, deployment_id, timeout=30):
        """Until no step of the deployment runs and its release is gone; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            running = daemon.query("SELECT id FROM step WHERE deployment_id = ? AND status = 'running'",
                                   (deployment_id,))
            if not running and not os.path.exists(os.path.join(app.deploy_to, "releases", str(deployment_id))):
                break
            time.sleep(0.1)
        return time.monotonic() - started

    def push(self, daemon, repo, app):
        """A new commit, delivered: the deployment it started."""
        repo.change()
        repo.push(hook=False)
        status, answer = delivery(daemon, repo, "push-%s" % repo.head()[:12])
        if status != 202 or not (answer or {}).get("deployments"):
            raise HarnessError("the delivery of %s answered %s: %s" % (repo.head()[:10], status, answer))
        return answer["deployments"][0]["id"]

    def next_push_deploys(self, checks, daemon, repo, app, what):
        deployment_id = self.push(daemon, repo, app)
        ended = daemon.wait_deployment(deployment_id, 120)
        link = link_release(read_link(os.path.join(app.deploy_to, "current")))
        checks.check(ended["status"] == "succeeded" and link == deployment_id,
                     "%s: the next push deploys (deployment %d %s, current -> %s)"
                     % (what, deployment_id, ended["status"], link))

    def common_checks(self, checks, daemon, app, what):
        builds = self.builds(app)
        twice = sorted({b for b in builds if builds.count(b) > 1})
        checks.check(not twice, "%s: no deployment ran its build twice (%s)"
                     % (what, "twice: %s" % twice if twice else "%d builds" % len(builds)))
        daemon.wait_idle([app.name], timeout=120)
        problems = check_app(daemon, app)
        checks.check(not problems, "%s: the link and the store agree, nothing is left running%s"
                     % (what, ": " + "; ".join(problems) if problems else ""))

    @contextlib.contextmanager
    def scenario(self, title, name, build):
        """A case: its checks, and its app and daemon on a database of their own. A harness error is a violation
        of the case; the database is running again, and the daemon and its steps are ended, whatever happened."""
        checks = Checks(self.ctx, "postgres")
        self.result["cases"].append((title, checks))
        log("%s:" % title)
        base, repo, app, daemon = self.app(name, build)
        try:
            yield checks, repo, app, daemon
        except HarnessError as error:
            checks.check(False, "could not complete the scenario: %s" % error)
        finally:
            self.server.start()
            if daemon.process:
                daemon.stop()
            self.ctx.end_step_processes(base)

    # -- the cases ---------------------------------------------------------------------------------------------

    def away_mid_deploy(self, outage, build, title):
        name = "away%d" % outage
        with self.scenario(title, name, build) as (checks, repo, app, daemon):
            live_before = link_release(read_link(os.path.join(app.deploy_to, "current")))
            deployment_id = self.push(daemon, repo, app)
            self.wait_phase(daemon, deployment_id, "build")
            self.server.stop()
            statuses = set()
            deadline = time.monotonic() + outage
            while time.monotonic() < deadline:
                try:
                    status, answer = daemon.request("GET", "/api/v1/apps/%s" % name, timeout=10)
                    statuses.add((status, error_code(answer)))
                except OSError as error:
                    statuses.add(("unreachable", str(error)))
                time.sleep(0.5)
            self.server.start()
            checks.check(statuses <= {(503, "store_unavailable"), (200, None)},
                         "while the database is away the API answers 503 store_unavailable, or from what it holds "
                         "(%s)" % sorted(map(str, statuses)))
            took = self.wait_recovered(daemon)
            checks.check(True, "the API answers from the store again %.1f s after PostgreSQL is back" % took)
            ended = daemon.wait_deployment(deployment_id, LEASE_SECONDS + 90)
            link = link_release(read_link(os.path.join(app.deploy_to, "current")))
            checks.note("deployment %d ended %s (%r); current %s -> %s"
                        % (deployment_id, ended["status"], ended.get("error"), live_before, link))
            if outage > LEASE_SECONDS:
                # Its lease ran out while the database was away: the run stops when it finds that out, switches
                # nothing and records nothing; the heartbeat's sweep marks it interrupted.
                checks.check(ended["status"] == "interrupted" and link == live_before,
                             "the deployment that lost its lease is interrupted and switched nothing (%s, current "
                             "-> %s)" % (ended["status"], link))
                # The run finds out at its next renewal, a second after the store answers again, and then ends its
                # step and removes its release.
                checks.note("the run stopped %.1f s after it was marked interrupted"
                            % self.wait_run_stopped(daemon, app, deployment_id))
            else:
                checks.check(ended["status"] in ("succeeded", "failed"),
                             "the deployment ends by itself (%s)" % ended["status"])
                checks.check(link == (deployment_id if ended["status"] == "succeeded" else live_before),
                             "current is the release the outcome says (%s -> %s)" % (ended["status"], link))
            self.common_checks(checks, daemon, app, "after the outage")
            self.next_push_deploys(checks, daemon, repo, app, "after the outage")

    def away_mid_burst(self, deliveries=300, outage=3):
        title = "PostgreSQL away for %d s during a burst of %d signed deliveries" % (outage, deliveries)
        with self.scenario(title, "burst", "true") as (checks, repo, app, daemon):
            answers = {}

            def send():
                for index in range(deliveries):
                    answers["burst-%04d" % index] = delivery(daemon, repo, "burst-%04d" % index)
                    time.sleep(0.03)

            sender = threading.Thread(target=send)
            sender.start()
            while len(answers) < deliveries // 3 and sender.is_alive():
                time.sleep(0.01)
            self.server.stop()
            time.sleep(outage)
            self.server.start()
            sender.join(timeout=600)
            self.wait_recovered(daemon)
            accepted = sorted(i for i, (status, _) in answers.items() if status is not None and 200 <= status < 300)
            refused = sorted(i for i, (status, answer) in answers.items()
                             if status == 503 and error_code(answer) == "store_unavailable")
            other = {i: (status, answer) for i, (status, answer) in answers.items()
                     if i not in accepted and i not in refused}
            checks.check(not other, "every delivery is answered 2xx, or 503 store_unavailable (%d accepted, %d 503%s)"
                         % (len(accepted), len(refused), "; others: %s" % dict(list(other.items())[:5]) if other else ""))
            checks.check(refused, "some deliveries came while the database was away (%d answered 503)" % len(refused))
            recorded = {row["id"] for row in daemon.query("SELECT id FROM webhook_delivery WHERE id LIKE 'github:burst-%'")}
            lost = [i for i in accepted if "github:" + i not in recorded]
            checks.check(not lost, "every delivery answered 2xx is recorded in the database (%d of %d; lost: %s)"
                         % (len(accepted) - len(lost), len(accepted), lost[:10]))
            # A forge redelivers what was refused; each is taken now.
            again = [delivery(daemon, repo, i)[0] for i in refused]
            checks.check(all(status is not None and 200 <= status < 300 for status in again),
                         "each refused delivery, sent again, is accepted (%s)" % sorted(set(again), key=str))
            self.common_checks(checks, daemon, app, "after the burst")

    def killed_mid_deploy(self):
        title = "the daemon SIGKILLed while a build runs, on PostgreSQL"
        with self.scenario(title, "killed", "sleep 5") as (checks, repo, app, daemon):
            live_before = link_release(read_link(os.path.join(app.deploy_to, "current")))
            deployment_id = self.push(daemon, repo, app)
            self.wait_phase(daemon, deployment_id, "build")
            daemon.kill9()
            daemon.start()
            ended = daemon.wait_deployment(deployment_id, 60)
            link = link_release(read_link(os.path.join(app.deploy_to, "current")))
            checks.check(ended["status"] == "interrupted" and link == live_before,
                         "after the restart, deployment %d is interrupted and current is unchanged (%s, current "
                         "-> %s)" % (deployment_id, ended["status"], link))
            time.sleep(6)  # as long as the build would have run: it must not start again by itself
            self.common_checks(checks, daemon, app, "after the restart")
            self.next_push_deploys(checks, daemon, repo, app, "after the restart")


def postgres_faults(ctx):
    return PostgresFaults(ctx).run()
