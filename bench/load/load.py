#!/usr/bin/env python3
"""No lost pushes (issue 6): a load test of Slipway's GitHub webhook.

It builds N apps, each with its own bare repository and a trivial pipeline, pushes C commits spread across
them (in order, up front, so every commit exists), then starts a fresh `slipway serve` and sends D signed
GitHub push deliveries naming those commits in a random order (fixed seed) from K threads on loopback.
Mixed in: repeated deliveries (the same X-GitHub-Delivery and body, sent after the first one was answered)
and deliveries with a bad signature (wrong secret, tampered body, no header, malformed header).

Checks:
  * no 5xx and no dropped connection, ever;
  * every first delivery: 202 with `matched == [its app]`;
  * every bad signature: 401 with the error shape;
  * every repeat: 202 with `matched == []` and `deployments == []`;
  * once the queues drain (no app deploying, nothing queued), every app's live commit (`current.commit`) is
    the newest commit pushed to it ("lost pushes" counts the apps where it is not), and no deployment failed;
  * the daemon is still alive and answers /healthz at the end.

Only the Python 3 standard library is used. See `bench/load/run --help`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import queue
import random
import re
import shlex
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

sys.dont_write_bytecode = True  # no __pycache__ folders in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness import cli, report, web  # noqa: E402
from harness.daemon import Daemon  # noqa: E402
from harness.git import ZERO_SHA, GitError, WorkRepo, git, identity_env  # noqa: E402
from harness.log import err as log  # noqa: E402
from harness.scratch import Scratch  # noqa: E402
from harness.stats import percentile  # noqa: E402

import hostile  # noqa: E402  (bench/load/hostile.py)



# ----------------------------------------------------------------------------------------------------------
# Small helpers



# ----------------------------------------------------------------------------------------------------------
# Repositories and pipelines


@dataclass
class AppRepo:
    name: str
    repo: WorkRepo
    commits: list[str] = field(default_factory=list)     # in push order; commits[-1] is the newest
    parents: dict[str, str] = field(default_factory=dict)  # commit -> parent (ZERO_SHA for the first)
    messages: dict[str, str] = field(default_factory=dict)

    @property
    def bare(self) -> str:
        return self.repo.bare

    @property
    def clone_url(self) -> str:
        return "file://" + self.bare


def git_env(root: str) -> dict:
    return identity_env("Load Bench", "load@example.com", home=root)


def build_repositories(root: str, app_count: int, commit_count: int, rng: random.Random,
                       push: bool = True) -> tuple[list[AppRepo], list[tuple[str, str]]]:
    """Makes the bare repositories and `commit_count` commits in one global order, pushing each commit to its
    app's bare repository right after making it (unless `push` is false: then Pusher pushes them later).
    Returns the apps and the global [(app, commit)] order."""
    env = git_env(root)
    apps: list[AppRepo] = []
    for index in range(app_count):
        name = f"load{index:02d}"
        repo = WorkRepo(os.path.join(root, "work", name), os.path.join(root, "repos", f"{name}.git"), env)
        apps.append(AppRepo(name, repo))
    # Every app gets at least one commit; the rest are spread at random.
    owners = list(range(app_count)) + [rng.randrange(app_count) for _ in range(commit_count - app_count)]
    rng.shuffle(owners)
    order: list[tuple[str, str]] = []
    for number, owner in enumerate(owners, start=1):
        app = apps[owner]
        app.repo.write("version.txt", f"{app.name} commit {len(app.commits) + 1} (global {number})\n")
        message = f"{app.name}: change {len(app.commits) + 1} (global {number})"
        sha = app.repo.commit(message, "version.txt")
        if push:
            app.repo.push("HEAD:refs/heads/main")
        app.parents[sha] = app.commits[-1] if app.commits else ZERO_SHA
        app.commits.append(sha)
        app.messages[sha] = message
        order.append((app.name, sha))
    if push:
        check_heads(apps)
    return apps, order


def check_heads(apps: list[AppRepo]) -> None:
    for app in apps:
        head = git("rev-parse", "refs/heads/main", cwd=app.bare, env=app.repo.env)
        if head != app.commits[-1]:
            raise RuntimeError(f"{app.bare}: main is {head}, expected the newest commit {app.commits[-1]}")


class Pusher(threading.Thread):
    """--live-push: pushes the commits to the bare repositories in their global order while the deliveries
    are being sent; a delivery naming a commit is sent only after that commit was pushed."""

    def __init__(self, apps: list[AppRepo], order: list[tuple[str, str]]):
        super().__init__(daemon=True)
        self.repos = {app.name: app.repo for app in apps}
        self.order = order
        self.pushed = {sha: threading.Event() for _, sha in order}
        self.error: str | None = None
        self.seconds = 0.0

    def run(self) -> None:
        started = time.perf_counter()
        try:
            for name, sha in self.order:
                self.repos[name].push(f"{sha}:refs/heads/main")
                self.pushed[sha].set()
        except GitError as error:
            self.error = f"{shlex.join(error.cmd)}: {error.stderr}"
        finally:
            for event in self.pushed.values():
                event.set()
            self.seconds = time.perf_counter() - started


def write_pipelines(root: str, apps: list[AppRepo], build: str = "true") -> str:
    folder = os.path.join(root, "pipelines")
    os.makedirs(folder)
    for app in apps:
        with open(os.path.join(folder, f"{app.name}.yml"), "w") as handle:
            handle.write(
                f"repository: {app.bare}\n"
                f"branch: main\n"
                f"deploy_to: {os.path.join(root, 'deploy', app.name)}\n"
                f"keep_releases: 2\n"
                f"build:\n"
                f"  - {json.dumps(build)}\n")
    return folder


def push_payload(app: AppRepo, commit: str) -> bytes:
    """A push payload shaped like GitHub's documented one."""
    before = app.parents[commit]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    head = {
        "id": commit, "tree_id": hashlib.sha1(commit.encode()).hexdigest(), "distinct": True,
        "message": app.messages[commit], "timestamp": now, "url": f"https://github.com/bench/{app.name}/commit/{commit}",
        "author": {"name": "Load Bench", "email": "load@example.com", "username": "load-bench"},
        "committer": {"name": "Load Bench", "email": "load@example.com", "username": "load-bench"},
        "added": [], "removed": [], "modified": ["version.txt"],
    }
    payload = {
        "ref": "refs/heads/main", "before": before, "after": commit, "created": before == ZERO_SHA, "deleted": False,
        "forced": False, "base_ref": None, "compare": f"https://github.com/bench/{app.name}/compare/{before[:12]}...{commit[:12]}",
        "commits": [head], "head_commit": head,
        "repository": {
            "id": zlib.crc32(app.name.encode()), "node_id": "R_bench", "name": app.name, "full_name": f"bench/{app.name}",
            "private": False, "owner": {"name": "bench", "login": "bench", "id": 1},
            "html_url": f"https://github.com/bench/{app.name}", "url": f"https://github.com/bench/{app.name}",
            "clone_url": app.clone_url, "git_url": f"git://github.com/bench/{app.name}.git",
            "ssh_url": f"git@github.com:bench/{app.name}.git", "svn_url": f"https://github.com/bench/{app.name}",
            "default_branch": "main", "master_branch": "main",
        },
        "pusher": {"name": "load-bench", "email": "load@example.com"},
        "sender": {"login": "load-bench", "id": 1, "type": "User"},
    }
    return json.dumps(payload).encode()


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ----------------------------------------------------------------------------------------------------------
# The deliveries


@dataclass
class Delivery:
    index: int
    kind: str                      # "first", "repeat" or "bad:<how>"
    app: str
    commit: str
    delivery_id: str
    body: bytes
    headers: dict
    original: "Delivery | None" = None
    done: threading.Event = field(default_factory=threading.Event)
    status: int | None = None
    response: object = None
    error: str | None = None
    latency: float | None = None
    problem: str | None = None     # why this delivery's answer breaks a check



def plan_deliveries(apps: list[AppRepo], total: int, commit_order: list[tuple[str, str]], secret: str,
                    concurrency: int, rng: random.Random, repeat_share: float, bad_share: float,
                    live: bool = False) -> list[Delivery]:
    by_name = {app.name: app for app in apps}
    repeats = round(total * repeat_share)
    bads = round(total * bad_share)
    firsts = total - repeats - bads
    if firsts < len(commit_order):
        raise SystemExit(f"--deliveries {total} leaves {firsts} first deliveries for {len(commit_order)} commits; "
                         "raise --deliveries or lower --commits")
    first_deliveries = plan_firsts(by_name, firsts, commit_order, secret, rng)
    sequence = first_deliveries + plan_bad(by_name, bads, commit_order, first_deliveries, secret, rng)
    rng.shuffle(sequence)
    if live:
        # Roughly in push order, each delivery within a tenth of the commits of its own commit's place.
        place = {sha: index for index, (_, sha) in enumerate(commit_order)}
        spread = max(1.0, len(commit_order) / 10)
        sequence.sort(key=lambda d: place[d.commit] + rng.uniform(-spread, spread))
    deliveries = add_repeats(sequence, first_deliveries, repeats, concurrency, rng)
    for index, delivery in enumerate(deliveries):
        delivery.index = index
    return deliveries


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def headers(body: bytes, delivery_id: str, signature: str | None, extra: dict | None = None) -> dict:
    result = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/bench", "X-GitHub-Event": "push",
              "X-GitHub-Delivery": delivery_id, "X-GitHub-Hook-ID": "1"}
    if signature is not None:
        result["X-Hub-Signature-256"] = signature
    result.update(extra or {})
    return result


def plan_firsts(by_name: dict[str, AppRepo], firsts: int, commit_order: list[tuple[str, str]], secret: str,
                rng: random.Random) -> list[Delivery]:
    """Every commit is named at least once; the other first deliveries name random commits."""
    named = list(commit_order) + [rng.choice(commit_order) for _ in range(firsts - len(commit_order))]
    rng.shuffle(named)
    sequence: list[Delivery] = []
    for app_name, commit in named:
        body = push_payload(by_name[app_name], commit)
        delivery_id = new_id(rng)
        sequence.append(Delivery(0, "first", app_name, commit, delivery_id, body, headers(body, delivery_id, sign(body, secret))))
    return sequence


def plan_bad(by_name: dict[str, AppRepo], bads: int, commit_order: list[tuple[str, str]],
             first_deliveries: list[Delivery], secret: str, rng: random.Random) -> list[Delivery]:
    """Deliveries with a bad signature, of each kind in turn."""
    bad_kinds = ["wrong_secret", "tampered_body", "no_signature", "malformed_signature", "sha1_only"]
    sequence: list[Delivery] = []
    for number in range(bads):
        how = bad_kinds[number % len(bad_kinds)]
        app_name, commit = rng.choice(commit_order)
        app = by_name[app_name]
        body = push_payload(app, commit)
        # Half of the bad ones carry the id of a real first delivery: a refused delivery must not use up its id.
        delivery_id = rng.choice(first_deliveries).delivery_id if number % 2 else new_id(rng)
        if how == "wrong_secret":
            hdrs = headers(body, delivery_id, sign(body, "not-" + secret))
        elif how == "tampered_body":
            signature = sign(body, secret)
            other = rng.choice(app.commits)
            tampered = body.replace(commit.encode(), (other if other != commit else ZERO_SHA).encode(), 1)
            if tampered == body:
                tampered = body + b" "
            body = tampered
            hdrs = headers(body, delivery_id, signature)
        elif how == "no_signature":
            hdrs = headers(body, delivery_id, None)
        elif how == "malformed_signature":
            hdrs = headers(body, delivery_id, "sha256=" + sign(body, secret)[7:-1] + "z")
        else:  # sha1_only: GitHub's legacy header, which Slipway does not accept on its own
            hdrs = headers(body, delivery_id, None,
                           {"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()})
        sequence.append(Delivery(0, "bad:" + how, app_name, commit, delivery_id, body, hdrs))
    return sequence


def add_repeats(sequence: list[Delivery], first_deliveries: list[Delivery], repeats: int, concurrency: int,
                rng: random.Random) -> list[Delivery]:
    """Repeats go well after their original (at least `concurrency` places later when there is room), so the
    original has been taken by a worker by the time a worker takes the repeat; the worker then waits for the
    original's answer before resending it, as GitHub's "redeliver" would."""
    keyed: list[tuple[float, Delivery]] = [(float(i), d) for i, d in enumerate(sequence)]
    position = {id(d): i for i, d in enumerate(sequence)}
    for _ in range(repeats):
        original = rng.choice(first_deliveries)
        start = position[id(original)] + concurrency
        key = rng.uniform(start, len(sequence)) if start < len(sequence) else len(sequence) + rng.random()
        repeat = Delivery(0, "repeat", original.app, original.commit, original.delivery_id, original.body,
                          dict(original.headers), original=original)
        keyed.append((key, repeat))
    keyed.sort(key=lambda pair: pair[0])
    return [d for _, d in keyed]


class Sender:
    """K threads, each with its own keep-alive connection, taking deliveries in order from one queue."""

    def __init__(self, port: int, deliveries: list[Delivery], concurrency: int, deadline: float,
                 pusher: Pusher | None = None):
        self.port = port
        self.pusher = pusher
        self.deliveries = deliveries
        self.concurrency = concurrency
        self.deadline = deadline
        self.queue: queue.Queue = queue.Queue()
        for delivery in deliveries:
            self.queue.put(delivery)
        self.reconnects = 0
        self.lock = threading.Lock()
        self.timed_out = False

    def run(self) -> float:
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.concurrency)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    def worker(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while True:
            try:
                delivery = self.queue.get_nowait()
            except queue.Empty:
                break
            if time.monotonic() > self.deadline:
                self.timed_out = True
                delivery.error = "not sent: the time limit was reached"
                delivery.done.set()
                continue
            if self.pusher is not None:
                self.pusher.pushed[delivery.commit].wait(max(0.0, self.deadline - time.monotonic()))
            if delivery.original is not None:
                delivery.original.done.wait(max(0.0, self.deadline - time.monotonic()))
            try:
                connection = self.send(connection, delivery)
            finally:
                delivery.done.set()
        if connection is not None:
            connection.close()

    def send(self, connection: http.client.HTTPConnection | None, delivery: Delivery) -> http.client.HTTPConnection | None:
        for attempt in (1, 2):
            fresh = connection is None
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            started = time.perf_counter()
            try:
                connection.request("POST", "/hooks/github", body=delivery.body, headers=delivery.headers)
                response = connection.getresponse()
                data = response.read()
                delivery.latency = time.perf_counter() - started
                delivery.status = response.status
                try:
                    delivery.response = json.loads(data)
                except ValueError:
                    delivery.response = data[:500]
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
                return connection
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                connection.close()
                connection = None
                # A keep-alive connection the server closed while idle fails on its next use; that request was
                # never read, so send it once more on a new connection. On a fresh connection it is a real drop.
                if attempt == 1 and not fresh:
                    with self.lock:
                        self.reconnects += 1
                    continue
                delivery.error = f"connection dropped: {type(error).__name__}: {error}"
                delivery.latency = time.perf_counter() - started
                return None
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                delivery.error = f"{type(error).__name__}: {error}"
                delivery.latency = time.perf_counter() - started
                return None
        return connection


def is_error_shape(value: object) -> bool:
    return (isinstance(value, dict) and set(value) == {"error"} and isinstance(value["error"], dict)
            and set(value["error"]) == {"code", "message"} and all(isinstance(v, str) for v in value["error"].values()))


def judge(delivery: Delivery) -> None:
    """Sets delivery.problem when its answer breaks a check."""
    if delivery.error:
        delivery.problem = delivery.error
        return
    status, body = delivery.status, delivery.response
    if status >= 500:
        delivery.problem = f"{status}: {body!r}"
    elif delivery.kind.startswith("bad:"):
        if status != 401 or not is_error_shape(body):
            delivery.problem = f"bad signature ({delivery.kind[4:]}) answered {status} {body!r}, expected 401 with an error"
    elif delivery.kind == "repeat":
        if delivery.original.status != 202:
            return  # the original already failed its own check
        if status != 202 or not isinstance(body, dict) or body.get("matched") != [] or body.get("deployments") != []:
            delivery.problem = f"repeated delivery {delivery.delivery_id} answered {status} {body!r}, expected 202 with nothing matched"
    else:
        if status != 202 or not isinstance(body, dict) or body.get("matched") != [delivery.app]:
            delivery.problem = f"delivery {delivery.delivery_id} of {delivery.app}@{delivery.commit[:7]} answered {status} {body!r}, expected 202 matching [{delivery.app}]"
        elif not isinstance(body.get("deployments"), list) or any(
                not isinstance(d, dict) or d.get("app") != delivery.app for d in body["deployments"]):
            delivery.problem = f"delivery {delivery.delivery_id} answered deployments that are not {delivery.app}'s: {body!r}"


# ----------------------------------------------------------------------------------------------------------
# After the flood


def wait_for_drain(port: int, app_names: list[str], deadline: float) -> tuple[bool, list[dict], float]:
    """Polls GET /api/v1/apps until, twice in a row, no app is deploying or has anything queued."""
    started = time.monotonic()
    settled = 0
    apps: list[dict] = []
    while time.monotonic() < deadline:
        status, body = web.request(port, "GET", "/api/v1/apps")
        if status == 200 and isinstance(body, dict):
            apps = body.get("apps", [])
            busy = [a["name"] for a in apps if a.get("status") == "deploying" or a.get("queued", 0) > 0
                    or (a.get("last_deployment") or {}).get("status") in ("queued", "running")]
            if not busy and {a["name"] for a in apps} >= set(app_names):
                settled += 1
                if settled >= 2:
                    return True, apps, time.monotonic() - started
            else:
                settled = 0
        time.sleep(0.25)
    return False, apps, time.monotonic() - started


def all_deployments(port: int, app_names: list[str]) -> tuple[dict[str, list[dict]], list[str]]:
    """Every deployment of every app (oldest first), paging with `before`, and any listing problems."""
    result: dict[str, list[dict]] = {}
    problems: list[str] = []
    for name in app_names:
        result[name] = []
        before = None
        while True:
            path = f"/api/v1/apps/{name}/deployments?limit=500" + (f"&before={before}" if before else "")
            status, body = web.request(port, "GET", path)
            if status != 200 or not isinstance(body, dict):
                problems.append(f"GET {path} answered {status} {body!r}")
                break
            page = body.get("deployments", [])
            result[name] += page
            if len(page) < 500:
                break
            before = min(d["id"] for d in page)
        result[name].sort(key=lambda d: d["id"])
    return result, problems


def deployment_problems(apps: list[AppRepo], deployments: dict[str, list[dict]]) -> list[str]:
    """Invariants of the deployments after the flood: ids unique across apps; every one finished; a superseded
    one names a newer deployment of its app; and the commits that went live only ever move forward."""
    problems: list[str] = []
    by_id: dict[int, dict] = {}
    for name, listing in deployments.items():
        for deployment in listing:
            if deployment["id"] in by_id:
                problems.append(f"deployment id {deployment['id']} appears twice")
            by_id[deployment["id"]] = deployment
    for app in apps:
        place = {sha: index for index, sha in enumerate(app.commits)}
        last_live = -1
        for deployment in deployments.get(app.name, []):
            if deployment["app"] != app.name:
                problems.append(f"{app.name}'s listing has deployment {deployment['id']} of {deployment['app']}")
            if deployment["status"] in ("queued", "running"):
                problems.append(f"deployment {deployment['id']} of {app.name} is still {deployment['status']}")
            if deployment["commit"] not in place:
                problems.append(f"deployment {deployment['id']} of {app.name} is of {deployment['commit']}, never pushed to it")
                continue
            if deployment["status"] == "superseded":
                newer = by_id.get(deployment.get("superseded_by") or 0)
                if newer is None or newer["id"] <= deployment["id"] or newer["app"] != app.name:
                    problems.append(f"deployment {deployment['id']} of {app.name} is superseded by {deployment.get('superseded_by')!r}, not a newer deployment of it")
            if deployment["status"] == "succeeded":
                if place[deployment["commit"]] <= last_live:
                    problems.append(f"{app.name} went back: deployment {deployment['id']} made {deployment['commit'][:7]} "
                                    f"(commit {place[deployment['commit']] + 1}) live after commit {last_live + 1}")
                last_live = max(last_live, place[deployment["commit"]])
    return problems



# ----------------------------------------------------------------------------------------------------------
# The run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/load/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000, help="how many deliveries in all (default 1000)")
    parser.add_argument("--commits", type=int, default=200, help="how many commits, spread across the apps (default 200)")
    parser.add_argument("--apps", type=int, default=10, help="how many apps (default 10)")
    parser.add_argument("--concurrency", type=int, default=50, help="deliveries in flight at once (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds for sending and draining (default 300)")
    parser.add_argument("--jobs", type=int, default=None, help="pass --jobs to slipway serve (default: its own, 2)")
    parser.add_argument("--repeat-share", type=float, default=0.10, help="share of repeated deliveries (default 0.10)")
    parser.add_argument("--bad-share", type=float, default=0.08, help="share of bad signatures (default 0.08)")
    parser.add_argument("--live-push", action="store_true",
                        help="push the commits while the deliveries are sent (each delivery after its commit's push) "
                             "instead of all up front, so deployments queue, run and supersede each other")
    parser.add_argument("--hostile", type=int, default=0,
                        help="hold this many idle and slowloris connections open while the deliveries are sent, and "
                             "time /healthz meanwhile (issue 18 asks for 1000)")
    parser.add_argument("--silent-subscribers", type=int, default=0,
                        help="after the load, hold this many event streams of a large deployment log that never read, "
                             "and follow the daemon's memory (issue 18 asks for 100)")
    parser.add_argument("--silent-log-mib", type=int, default=10, help="that log's size in MiB (default 10)")
    parser.add_argument("--build", default="true",
                        help="the pipelines' one build step (default 'true'; e.g. 'sleep 0.2' makes deployments queue up)")
    cli.add_run_arguments(parser, kept="repos, state, daemon log")
    args = parser.parse_args()
    if args.apps < 1 or args.commits < args.apps or args.deliveries < 1 or args.concurrency < 1:
        parser.error("need --apps >= 1, --commits >= --apps, --deliveries >= 1 and --concurrency >= 1")
    cli.check_binary(parser, args)
    return args


class Run:
    """One load run: the setup, the flood, what the daemon says afterwards, and the checks of it all."""

    def __init__(self, args: argparse.Namespace, root: str):
        self.args = args
        self.root = root
        self.rng = random.Random(args.seed)
        self.secret = f"load-secret-{args.seed}"
        self.daemon: Daemon | None = None
        self.failures: list[str] = []
        self.hostile: hostile.HostileClients | None = None
        self.hostile_lines: list[str] = []

    def set_up(self) -> None:
        args = self.args
        log(f"setting up {args.apps} apps and {args.commits} commits in {self.root}")
        started = time.perf_counter()
        self.apps, self.commit_order = build_repositories(self.root, args.apps, args.commits, self.rng,
                                                          push=not args.live_push)
        self.pipelines = write_pipelines(self.root, self.apps, args.build)
        self.deliveries = plan_deliveries(self.apps, args.deliveries, self.commit_order, self.secret,
                                          args.concurrency, self.rng, args.repeat_share, args.bad_share,
                                          live=args.live_push)
        if args.silent_subscribers:
            self.chatty = hostile.add_chatty_app(self.root, self.pipelines, args.silent_log_mib)
        self.setup_seconds = time.perf_counter() - started

    def start_daemon(self) -> None:
        args = self.args
        serve_args = ["--webhook-secret", self.secret] + (["--jobs", str(args.jobs)] if args.jobs else [])
        self.daemon = Daemon(args.slipway, self.pipelines, os.path.join(self.root, "state"), args=serve_args,
                             log_path=os.path.join(self.root, "daemon.log"))
        self.port = self.daemon.start()
        self.names = [app.name for app in self.apps]
        self.daemon.wait_apps(self.names)
        log(f"slipway serve is on port {self.port} (pid {self.daemon.process.pid}); sending {len(self.deliveries)} "
            f"deliveries at concurrency {args.concurrency}")
        if args.hostile:
            log(f"holding {args.hostile} idle and slowloris connections meanwhile")
            self.hostile = hostile.HostileClients(self.port, args.hostile)
            self.hostile.start()

    def flood(self) -> None:
        """Sends every delivery (pushing the commits meanwhile with --live-push) and judges each answer."""
        args = self.args
        self.deadline = time.monotonic() + args.time_limit
        self.pusher = Pusher(self.apps, self.commit_order) if args.live_push else None
        if self.pusher is not None:
            self.pusher.start()
        self.sender = Sender(self.port, self.deliveries, args.concurrency, self.deadline, self.pusher)
        self.send_seconds = self.sender.run()
        if self.pusher is not None:
            self.pusher.join()
            if self.pusher.error:
                raise RuntimeError(f"a push failed: {self.pusher.error}")
            check_heads(self.apps)
        for delivery in self.deliveries:
            judge(delivery)

    def look_after(self) -> None:
        """Waits for the queues to drain and reads the deployments and the daemon's health."""
        port = self.port
        self.drained, self.final_apps, self.drain_seconds = wait_for_drain(port, self.names, self.deadline)
        deployments, listing_problems = all_deployments(port, self.names)
        self.counts: dict[str, int] = {}
        for listing in deployments.values():
            for deployment in listing:
                self.counts[deployment["status"]] = self.counts.get(deployment["status"], 0) + 1
        self.invariant_problems = listing_problems + deployment_problems(self.apps, deployments)
        self.health_status, self.health = web.request(port, "GET", "/healthz", timeout=10)
        self.alive = self.daemon.alive()
        if self.hostile is not None:
            self.hostile.finish()
            self.hostile_lines += self.hostile.summary()
            self.failures += self.hostile.problems()
        if self.args.silent_subscribers:
            log(f"holding {self.args.silent_subscribers} event streams of a {self.args.silent_log_mib} MiB log that never read")
            lines, problems = hostile.silent_subscribers(port, self.daemon.process.pid, self.chatty,
                                                         self.args.silent_subscribers)
            self.hostile_lines += lines
            self.failures += problems

    def tally(self) -> None:
        """Sorts the deliveries by kind and by what happened to them."""
        deliveries = self.deliveries
        self.answered = [d for d in deliveries if d.status is not None]
        self.by_status: dict[str, int] = {}
        for delivery in deliveries:
            key = str(delivery.status) if delivery.status is not None else ("not sent" if delivery.error and delivery.error.startswith("not sent") else "connection error")
            self.by_status[key] = self.by_status.get(key, 0) + 1
        self.five_xx = [d for d in self.answered if d.status >= 500]
        self.dropped = [d for d in deliveries if d.error and not d.error.startswith("not sent")]
        self.not_sent = [d for d in deliveries if d.error and d.error.startswith("not sent")]
        self.bad = [d for d in deliveries if d.kind.startswith("bad:")]
        self.bad_refused = [d for d in self.bad if d.status == 401 and not d.problem]
        self.repeats = [d for d in deliveries if d.kind == "repeat"]
        self.repeats_dropped = [d for d in self.repeats if d.status == 202 and not d.problem]
        self.firsts = [d for d in deliveries if d.kind == "first"]
        self.firsts_ok = [d for d in self.firsts if not d.problem]
        self.queued_by_firsts = sum(len(d.response.get("deployments", [])) for d in self.firsts
                                    if d.status == 202 and isinstance(d.response, dict))
        self.live = {a["name"]: ((a.get("current") or {}).get("commit")) for a in self.final_apps}
        self.lost = [app for app in self.apps if self.live.get(app.name) != app.commits[-1]]
        self.latencies = [d.latency for d in deliveries if d.latency is not None and d.status is not None]

    def check(self) -> None:
        args, failures = self.args, self.failures
        if self.five_xx:
            failures.append(f"{len(self.five_xx)} deliveries answered 5xx")
        if self.dropped:
            failures.append(f"{len(self.dropped)} deliveries lost their connection")
        if self.not_sent:
            failures.append(f"{len(self.not_sent)} deliveries were not sent within --time-limit {args.time_limit:g}s")
        if len(self.bad_refused) != len(self.bad):
            failures.append(f"{len(self.bad) - len(self.bad_refused)} of {len(self.bad)} bad signatures were not refused with 401")
        if len(self.repeats_dropped) != len(self.repeats):
            failures.append(f"{len(self.repeats) - len(self.repeats_dropped)} of {len(self.repeats)} repeated deliveries were not dropped")
        if len(self.firsts_ok) != len(self.firsts):
            failures.append(f"{len(self.firsts) - len(self.firsts_ok)} of {len(self.firsts)} first deliveries were not accepted for their app")
        if not self.drained:
            failures.append("the queues did not drain within --time-limit")
        if self.lost:
            failures.append(f"{len(self.lost)} lost pushes: " + ", ".join(
                f"{a.name} is live on {(self.live.get(a.name) or 'nothing')[:7]}, newest is {a.commits[-1][:7]}" for a in self.lost))
        if self.invariant_problems:
            failures.append(f"{len(self.invariant_problems)} problems with the deployments: " + "; ".join(self.invariant_problems[:10]))
        if self.counts.get("failed", 0) or self.counts.get("interrupted", 0):
            failures.append(f"deployments that should have succeeded did not: {self.counts}")
        if not self.alive:
            failures.append(f"the daemon died (exit status {self.daemon.process.returncode})")
        if self.health_status != 200:
            failures.append(f"/healthz answered {self.health_status} {self.health!r} after the load")

    def stop_daemon(self) -> None:
        """Stops the daemon and reads its log: error lines are counted, a crash is a failure."""
        self.exit_status = self.daemon.stop(grace=40.0)
        self.error_lines = [line for line in self.daemon.log_text().splitlines() if re.search(r" (error|critical) ", line)]
        crash_lines = self.daemon.crash_lines()
        if crash_lines:
            self.failures.append(f"the daemon log shows a crash: {crash_lines[:3]}")

    def summary(self) -> list[str]:
        args, deliveries, pusher = self.args, self.deliveries, self.pusher
        throughput = len(self.answered) / self.send_seconds if self.send_seconds > 0 else 0.0
        p50 = percentile(self.latencies, 50) * 1000
        p99 = percentile(self.latencies, 99) * 1000
        per_kind = {}
        for kind in ("first", "repeat", "bad"):
            values = [d.latency for d in deliveries if d.latency is not None and d.status is not None and d.kind.split(":")[0] == kind]
            per_kind[kind] = (percentile(values, 50) * 1000, percentile(values, 99) * 1000, len(values))
        return [
            f"deliveries:            {len(deliveries)} ({len(self.firsts)} first, {len(self.repeats)} repeats, {len(self.bad)} bad signatures)",
            f"apps / commits:        {len(self.apps)} / {len(self.commit_order)} (commits per app: {', '.join(str(len(a.commits)) for a in self.apps)})",
            f"concurrency:           {args.concurrency} (daemon --jobs {args.jobs or 'default'})",
            f"build step:            {args.build}",
            f"pushes:                " + (f"during the flood (--live-push), {pusher.seconds:.2f}s" if pusher else "all up front"),
            f"send time:             {self.send_seconds:.2f}s (setup {self.setup_seconds:.1f}s, drain {self.drain_seconds:.2f}s)",
            f"deliveries per second: {throughput:.1f}",
            f"latency:               p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(self.latencies, default=0) * 1000:.1f} ms",
            "latency by kind:       " + ", ".join(f"{k} p50 {v[0]:.1f} / p99 {v[1]:.1f} ms (n={v[2]})" for k, v in per_kind.items()),
            f"status codes:          " + ", ".join(f"{k}: {v}" for k, v in sorted(self.by_status.items())),
            f"repeats dropped:       {len(self.repeats_dropped)} / {len(self.repeats)}",
            f"bad signatures 401:    {len(self.bad_refused)} / {len(self.bad)}",
            f"first deliveries ok:   {len(self.firsts_ok)} / {len(self.firsts)} (they queued {self.queued_by_firsts} deployments)",
            f"deployments:           " + ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items())),
            f"reconnects:            {self.sender.reconnects} (idle keep-alive connections closed by the server, resent once)",
            f"lost pushes:           {len(self.lost)} / {len(self.apps)} apps",
            f"daemon:                alive at the end: {self.alive}; exit status after SIGTERM: {self.exit_status}; "
            f"error lines in its log: {len(self.error_lines)}",
        ] + self.hostile_lines

    def print_report(self, lines: list[str]) -> None:
        problems = [d for d in self.deliveries if d.problem]
        print("\n".join(lines), flush=True)
        if problems:
            print(f"\nfirst of {len(problems)} deliveries with a problem:")
            for delivery in problems[:15]:
                print(f"  #{delivery.index} {delivery.kind} {delivery.delivery_id}: {delivery.problem[:400]}")
        print("\nRESULT: " + ("PASS" if not self.failures else "FAIL\n  - " + "\n  - ".join(self.failures)))

    def markdown(self, lines: list[str], command: str, date: str, version: str) -> str:
        args, failures = self.args, self.failures
        section = [
            "## Load: no lost pushes (`bench/load`)", "",
            f"- Command: `{command}`",
            f"- Date: {date}",
            f"- Machine: {report.machine_description()}",
            f"- Slipway: `{args.slipway}` ({version}), seed {args.seed}", "",
            "| measure | value |", "| --- | --- |",
        ]
        for line in lines:
            name, _, value = line.partition(":")
            section.append(f"| {name.strip()} | {value.strip()} |")
        section += ["", "**Result: " + ("PASS**" if not failures else "FAIL**"), ""]
        section += [f"- {failure}" for failure in failures]
        section.append("")
        return "\n".join(section) + "\n"

    def run(self, command: str, date: str, version: str) -> int:
        self.set_up()
        self.start_daemon()
        self.flood()
        self.look_after()
        self.tally()
        self.check()
        self.stop_daemon()
        lines = self.summary()
        self.print_report(lines)
        if self.args.out:
            report.write(self.args.out, self.markdown(lines, command, date, version), append=self.args.append)
        return 0 if not self.failures else 1


def main() -> int:
    args = parse_args()
    command = report.command_line("bench/load/run")
    date = report.stamp(report.utc_now())
    version = report.binary_version(args.slipway)
    scratch = Scratch("load")
    run = Run(args, scratch.root)
    try:
        return run.run(command, date, version)
    except GitError as error:
        log(f"setup failed: {shlex.join(error.cmd)}: {error.stderr}")
        return 2
    except RuntimeError as error:
        log(f"error: {error}")
        return 1
    finally:
        daemon = run.daemon
        if daemon is not None and daemon.process is not None and daemon.exit_status is None:
            daemon.stop(grace=40.0)
        keep = args.keep or bool(run.failures) or sys.exc_info()[0] is not None
        scratch.finish(keep, f"kept {scratch.root} (the repositories, the daemon's state and daemon.log)", log)


if __name__ == "__main__":
    sys.exit(main())
