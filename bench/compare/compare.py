"""The peer benchmarks of Slipway, measured in one run, written to bench/RESULTS.md.

Each figure is measured against its peer in the same run on the same machine, and reported as a ratio, because
on a shared machine only ratios hold still. Cases:

  export     GitKit's export of a 15,000-file, ~100 MB tree vs `git checkout` (tmpfs and disk)    slipway-bench
  export-history  the same on a real project's tree with history in deltas (tmpfs)              slipway-bench
  fetch      one new commit into a mirror vs `git fetch` (local path, git:// and ssh:// to a real sshd)  slipway-bench
  ls-remote  listing remote heads vs `git ls-remote`                                                slipway-bench
  deploy     the daemon's own overhead per deploy (1,000 files, `true` steps)                       slipway-bench
  api        GET /api/v1/apps (100 apps, 10,000 deployments) vs a bare Hummingbird route (wrk)     slipway-bench
  api-pg     the same on the PostgreSQL store (a throwaway server, script/test-postgres)         slipway-bench
  webhook    signed GitHub push deliveries per second vs adnanh/webhook verifying the same HMAC    this script
             (twice: a minimal payload, and GitHub's documented example at its real size)
  webhook-pg the same on the PostgreSQL store, where each delivery id is written before its answer this script
  latency    git push -> first step starting, through the real hook                                 this script
  memory     resident memory of an idle daemon with 100 and 1,000 apps (adnanh/webhook beside)     this script
  monorepo   30 apps on one repository over git://: mirror size vs `git clone --mirror`, fetches   this script
             per push, push to live for a one-service change
  cache      a Python app's deploy with its virtualenv cached vs its first deploy                  this script
  proxy      requests through an app's public port (`slipway forward`) vs the app's own port (wrk),  this script
             with nginx serving a small file as the app, so that the forwarder's own cost shows;
             nginx's TCP proxy (stream) in front of the same app is the peer forwarder
  bigfile    the daemon's peak memory growth while it deploys a commit with a 100 MB file, vs the  this script
             file's size (the kernel's VmHWM, reset before the deploy)
"""

import argparse
import datetime
import hashlib
import hmac
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ folders in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness import ROOT, processes  # noqa: E402
from harness.daemon import Daemon  # noqa: E402
from harness.git import WorkRepo, git, identity_env  # noqa: E402
from harness.log import out as log  # noqa: E402
from harness.ports import free_port, wait_listening  # noqa: E402
from harness.postgres import PostgresServer  # noqa: E402

GIT_ENV = identity_env("Bench", "b@example.com")


def run(args, **kwargs):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kwargs)


def bench(binary, *args):
    """Runs a slipway-bench case and returns its last line, a JSON object."""
    log("  $ slipway-bench " + " ".join(args))
    result = run([os.path.join(binary, "slipway-bench"), *args])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    for line in lines[:-1]:
        log("    " + line)
    return json.loads(lines[-1])


def start_daemon(binary, pipelines, state, port, extra=(), env=None):
    """`slipway serve` on the port, logging warnings only (to nowhere); returns once /healthz answers."""
    daemon = Daemon(os.path.join(binary, "slipway"), pipelines, state, port=port, args=["--log-level", "warning", *extra],
                    env=env)
    daemon.start()
    return daemon


def start_peer(hooks, port):
    """adnanh/webhook with the hooks file, on the port."""
    return subprocess.Popen(["webhook", "-hooks", hooks, "-ip", "127.0.0.1", "-port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def small_repo(directory, name):
    """A bare repository with one commit, and a working clone to push from."""
    repo = WorkRepo(os.path.join(directory, f"{name}-work"), os.path.join(directory, f"{name}.git"), GIT_ENV)
    repo.write("index.html", "hello\n")
    repo.commit("first")
    repo.push()
    return repo.bare, repo


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # utime stime cutime cstime


def wait_until_idle(pid, seconds=120):
    """Waits until `pid` (and the children it reaps) stops using the CPU for a second."""
    deadline = time.time() + seconds
    last = cpu_ticks(pid)
    while time.time() < deadline:
        time.sleep(1)
        now = cpu_ticks(pid)
        if now - last <= 2 and subprocess.run(["pgrep", "-P", str(pid)], capture_output=True).returncode != 0:
            return
        last = now


def status_kib(pid, field):
    """A field of /proc/PID/status given in kB (VmRSS, VmHWM, ...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def pss_uss_kib(pid):
    """Proportional and unique set sizes: RSS counts every shared library page in full, which for a Swift
    binary (Foundation, ICU, the Swift runtime) is most of it; PSS shares those out, USS leaves them out."""
    pss = uss = 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
            elif line.startswith("Private_Clean:") or line.startswith("Private_Dirty:"):
                uss += int(line.split()[1])
    return pss, uss


def wrk_rate(url, lua, seconds, connections):
    result = run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", lua, url])
    text = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return rate, int(non2xx.group(1)) if non2xx else 0, errors.group(1) if errors else ""


def wrk_latency(url, seconds, connections):
    """Requests per second and the 99th percentile latency in milliseconds, from wrk --latency."""
    text = run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Socket errors: (.*)", text)
    return rate, p99, errors.group(1) if errors else ""


# --- the public port's forwarder ------------------------------------------------------------------------------

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ root {dir}/www; }}
  }}
}}
"""

# nginx's TCP proxy in front of the same app: what a mature forwarder costs on the same cores.
NGINX_STREAM_CONF = """
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/stream-error.log;
pid {dir}/stream.pid;
events {{ worker_connections 1024; }}
stream {{
  server {{
    listen 127.0.0.1:{port};
    proxy_pass 127.0.0.1:{app_port};
  }}
}}
"""


def proxy_case(binary, scratch, seconds, rounds):
    """wrk against the app's own port, through `slipway forward` in front of it, and through nginx's TCP proxy in
    front of it (the peer forwarder), alternating, in one run."""
    os.makedirs(os.path.join(scratch, "www"), exist_ok=True)
    with open(os.path.join(scratch, "www", "index.html"), "w") as f:
        f.write("<!doctype html><p>" + "x" * 500 + "</p>\n")
    app_port, public_port, stream_port = free_port(), free_port(), free_port()
    with open(os.path.join(scratch, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(dir=scratch, port=app_port))
    with open(os.path.join(scratch, "stream.conf"), "w") as f:
        f.write(NGINX_STREAM_CONF.format(dir=scratch, port=stream_port, app_port=app_port))
    backends = os.path.join(scratch, "backends")
    with open(backends, "w") as f:
        f.write(f"127.0.0.1:{app_port}\n")
    app = subprocess.Popen(["nginx", "-p", scratch, "-c", os.path.join(scratch, "nginx.conf")])
    forwarder = subprocess.Popen([os.path.join(binary, "slipway"), "forward", "--listen", f"127.0.0.1:{public_port}",
                                  "--backends", backends], stdout=subprocess.DEVNULL)
    stream = subprocess.Popen(["nginx", "-p", scratch, "-c", os.path.join(scratch, "stream.conf")])
    try:
        for port in (app_port, public_port, stream_port):
            if not wait_listening(port, 30):
                raise RuntimeError(f"nothing listens on port {port}")
        direct, proxied, peer = [], [], []
        for _ in range(rounds):
            direct.append(wrk_latency(f"http://127.0.0.1:{app_port}/", seconds, 50))
            proxied.append(wrk_latency(f"http://127.0.0.1:{public_port}/", seconds, 50))
            peer.append(wrk_latency(f"http://127.0.0.1:{stream_port}/", seconds, 50))
    finally:
        for process in (stream, forwarder, app):
            process.terminate()
            process.wait()
    rate, p99 = (statistics.median(r[i] for r in proxied) for i in (0, 1))
    app_rate, app_p99 = (statistics.median(r[i] for r in direct) for i in (0, 1))
    peer_rate, peer_p99 = (statistics.median(r[i] for r in peer) for i in (0, 1))
    return {"case": "proxy", "connections": 50, "seconds": seconds, "rounds": rounds,
            "forwarded_rps": round(rate), "direct_rps": round(app_rate), "ratio": round(rate / app_rate, 2),
            "forwarded_p99_ms": round(p99, 2), "direct_p99_ms": round(app_p99, 2),
            "p99_ratio": round(p99 / app_p99, 2),
            "nginx_stream_rps": round(peer_rate), "nginx_stream_p99_ms": round(peer_p99, 2),
            "nginx_stream_ratio": round(peer_rate / app_rate, 2), "vs_nginx_stream": round(rate / peer_rate, 2),
            "errors": [r[2] for r in direct + proxied + peer if r[2]]}


# --- webhook ingestion ---------------------------------------------------------------------------------------

WRK_LUA = r"""
-- Every request is the same signed GitHub push, with its own delivery id, as a forge sends them.
local body = [[%BODY%]]
-- Delivery ids are unique across threads and across runs: a repeated id would be dropped as a duplicate,
-- which is cheaper than the real work and would flatter the rate.
-- thread_id must be a global: thread:set() in setup writes the thread's globals, and a local of the same name
-- would shadow it, giving every thread the same ids (half the deliveries were dropped as duplicates that way).
local counter = 0
thread_id = "0"
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("thread_id", tostring(os.time()) .. "-" .. tostring(threads))
end
request = function()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-GitHub-Event"] = "push"
  headers["X-GitHub-Delivery"] = thread_id .. "-" .. counter
  headers["X-Hub-Signature-256"] = "sha256=%SIGNATURE%"
  return wrk.format("POST", nil, headers, body)
end
"""


def github_push_example(head, clone_url):
    """A push delivery shaped like GitHub's documented example, at its real size (about 7 KB): a repository object
    with its 80-odd fields and API URLs, the owner, the sender, and one commit."""
    api = "https://api.github.com/repos/octo-org/hello"
    user = {"login": "octocat", "id": 583231, "node_id": "MDQ6VXNlcjU4MzIzMQ==", "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
            "gravatar_id": "", "type": "User", "site_admin": False, "name": "The Octocat", "email": "octocat@github.com"}
    for key in ["url", "html_url", "followers_url", "following_url", "gists_url", "starred_url", "subscriptions_url",
                "organizations_url", "repos_url", "events_url", "received_events_url"]:
        user[key] = "https://api.github.com/users/octocat/" + key.replace("_url", "")
    repository = {"id": 186853002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=", "name": "hello", "full_name": "octo-org/hello",
                  "private": False, "owner": user, "html_url": "https://github.com/octo-org/hello", "description": None,
                  "fork": False, "url": "https://github.com/octo-org/hello"}
    for key in ["forks", "keys", "collaborators", "teams", "hooks", "issue_events", "events", "assignees", "branches", "tags",
                "blobs", "git_tags", "git_refs", "trees", "statuses", "languages", "stargazers", "contributors", "subscribers",
                "subscription", "commits", "git_commits", "comments", "issue_comment", "contents", "compare", "merges",
                "archive", "downloads", "issues", "pulls", "milestones", "notifications", "labels", "releases", "deployments"]:
        repository[key + "_url"] = f"{api}/{key.replace('_', '/')}"
    repository.update({
        "created_at": 1557933565, "updated_at": "2026-11-25T10:00:00Z", "pushed_at": 1764064800,
        "git_url": "git://github.com/octo-org/hello.git", "ssh_url": "git@github.com:octo-org/hello.git", "clone_url": clone_url,
        "svn_url": "https://github.com/octo-org/hello", "homepage": None, "size": 0, "stargazers_count": 0, "watchers_count": 0,
        "language": None, "has_issues": True, "has_projects": True, "has_downloads": True, "has_wiki": True, "has_pages": False,
        "forks_count": 0, "mirror_url": None, "archived": False, "disabled": False, "open_issues_count": 0, "license": None,
        "allow_forking": True, "is_template": False, "topics": [], "visibility": "public", "forks": 0, "open_issues": 0,
        "watchers": 0, "default_branch": "main", "stargazers": 0, "master_branch": "main"})
    commit = {"id": head, "tree_id": "f9d2a07e9488b91af2641b26b9407fe22a451433", "distinct": True,
              "message": "Update README.md\n\nSay what the service does, and how to run it.", "timestamp": "2026-11-25T10:00:00Z",
              "url": f"https://github.com/octo-org/hello/commit/{head}",
              "author": {"name": "The Octocat", "email": "octocat@github.com", "username": "octocat"},
              "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
              "added": [], "removed": [], "modified": ["README.md"]}
    return {"ref": "refs/heads/main", "before": "0" * 40, "after": head, "repository": repository,
            "pusher": {"name": "octocat", "email": "octocat@github.com"}, "sender": user, "created": False, "deleted": False,
            "forced": False, "base_ref": None, "compare": f"https://github.com/octo-org/hello/compare/{'0' * 12}...{head[:12]}",
            "commits": [commit], "head_commit": commit}


def minimal_push(head, clone_url):
    """A push delivery with only the fields Slipway reads (about 400 bytes)."""
    return {
        "ref": "refs/heads/main", "before": "0" * 40, "after": head,
        "repository": {"full_name": "bench/hook", "clone_url": clone_url, "html_url": "https://example.com/bench/hook"},
        "pusher": {"name": "bench"}, "head_commit": {"id": head, "message": "first"},
    }


def write_webhook_files(scratch, bare, head, secret, realistic):
    """The pipeline, wrk's script with the signed delivery, and adnanh/webhook's hooks file, which checks the same
    HMAC over the same body and then runs a command per delivery. Returns (pipelines, payload, signature, lua, hooks)."""
    pipelines = os.path.join(scratch, "hook-pipelines")
    os.makedirs(pipelines)
    with open(os.path.join(pipelines, "hook.yml"), "w") as f:
        f.write(f"repository: {bare}\ndeploy_to: {scratch}/hook-deploy\nbuild:\n  - \"true\"\n")
    if realistic:
        payload = json.dumps(github_push_example(head, "file://" + bare))
    else:
        payload = json.dumps(minimal_push(head, "file://" + bare), separators=(",", ":"))
    assert "]]" not in payload, "the payload would end the Lua long string it is written into"
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    lua = os.path.join(scratch, "deliveries.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA.replace("%BODY%", payload).replace("%SIGNATURE%", signature))
    hooks = os.path.join(scratch, "hooks.json")
    with open(hooks, "w") as f:
        json.dump([{
            "id": "deploy", "execute-command": "/bin/true",
            "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": secret,
                                       "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}},
        }], f)
    return pipelines, payload, signature, lua, hooks


def webhook_rounds(daemon, peer, peer_port, lua, seconds, rounds):
    """Alternating wrk runs against each; the deliveries per second of every round, (ours, theirs)."""
    ours, theirs = [], []
    for index in range(rounds):
        rate, bad, errors = wrk_rate(f"{daemon.url}/hooks/github", lua, seconds, 32)
        if bad:
            raise RuntimeError(f"slipway answered {bad} deliveries with non-2xx ({errors})")
        ours.append(rate)
        wait_until_idle(daemon.process.pid)
        rate, bad, errors = wrk_rate(f"http://127.0.0.1:{peer_port}/hooks/deploy", lua, seconds, 32)
        if bad:
            raise RuntimeError(f"webhook answered {bad} deliveries with non-2xx ({errors})")
        theirs.append(rate)
        # adnanh/webhook answers before its command runs; let the commands it still owes finish, so that
        # they do not take the CPU from the next round.
        wait_until_idle(peer.pid)
        log(f"    round {index + 1}: slipway {ours[-1]:.0f}/s, adnanh/webhook {theirs[-1]:.0f}/s")
    return ours, theirs


def webhook_case(binary, scratch, seconds, rounds, realistic=False, store=None):
    """Deliveries per second against adnanh/webhook. The payload is either the minimal one (the fields Slipway reads,
    about 400 bytes) or, with `realistic`, GitHub's documented example at its real size. `store` is a PostgreSQL URL
    for the daemon's `--store`; the embedded SQLite store by default."""
    secret = "bench-secret"
    bare, _ = small_repo(scratch, "hook")
    head = git("rev-parse", "main", cwd=bare, env=GIT_ENV)
    pipelines, payload, signature, lua, hooks = write_webhook_files(scratch, bare, head, secret, realistic)
    peer_port = free_port()
    daemon = start_daemon(binary, pipelines, os.path.join(scratch, "hook-state"), free_port(),
                          extra=["--webhook-secret", secret] + (["--store", store] if store else []))
    peer = start_peer(hooks, peer_port)
    try:
        time.sleep(1)
        # The first delivery deploys the head; every later one is the real work of ingestion: authenticate,
        # record the delivery id, notice the branch, find nothing new.
        status, answer = daemon.request("POST", "/hooks/github", payload.encode(), headers={
            "X-GitHub-Event": "push", "X-GitHub-Delivery": "warm-up", "X-Hub-Signature-256": "sha256=" + signature})
        if status >= 400:
            raise RuntimeError(f"the warm-up delivery answered {status}: {answer!r}")
        ours, theirs = webhook_rounds(daemon, peer, peer_port, lua, seconds, rounds)
        slipway_rate, peer_rate = statistics.median(ours), statistics.median(theirs)
        return {"case": "webhook", "payload_bytes": len(payload), "realistic": realistic,
                "store": "postgres" if store else "sqlite",
                "slipway_per_s": round(slipway_rate, 1), "webhook_per_s": round(peer_rate, 1),
                "ratio": round(slipway_rate / peer_rate, 3), "goal": 2.0,
                "rounds": [[round(a), round(b)] for a, b in zip(ours, theirs)]}
    finally:
        daemon.stop(grace=20)
        processes.end(peer, grace=20)


# --- push to first step -----------------------------------------------------------------------------------------

def latency_case(binary, scratch, pushes):
    bare, repo = small_repo(scratch, "latency")
    pipelines = os.path.join(scratch, "latency-pipelines")
    os.makedirs(pipelines)
    with open(os.path.join(pipelines, "latency.yml"), "w") as f:
        f.write(f"repository: {bare}\ndeploy_to: {scratch}/latency-deploy\n"
                "build:\n  - date +%s.%N > \"$SLIPWAY_SHARED_DIR/started-$SLIPWAY_DEPLOYMENT\"\n")
    daemon = start_daemon(binary, pipelines, os.path.join(scratch, "latency-state"), free_port())
    try:
        run([os.path.join(binary, "slipway"), "hook", "install", bare, "--app", "latency", "--server", daemon.url])
        shared = os.path.join(scratch, "latency-deploy", "shared")
        samples = []
        for index in range(pushes):
            with open(os.path.join(repo.work, "index.html"), "a") as f:
                f.write(f"{index}\n")
            repo.git("commit", "-qam", f"change {index}")
            before = set(os.listdir(shared)) if os.path.isdir(shared) else set()
            start = time.time()
            repo.push()
            new = [name for name in os.listdir(shared) if name.startswith("started-") and name not in before]
            if not new:
                raise RuntimeError("the push did not start a step")
            with open(os.path.join(shared, new[0])) as f:
                first_step = float(f.read())
            samples.append((first_step - start) * 1000)
        return {"case": "latency", "pushes": pushes, "push_to_first_step_ms_median": round(statistics.median(samples), 1),
                "push_to_first_step_ms_p90": round(sorted(samples)[int(len(samples) * 0.9) - 1], 1), "goal_ms": 100}
    finally:
        daemon.stop(grace=20)


# --- idle memory ----------------------------------------------------------------------------------------------

def many_apps(scratch, name, apps, build):
    """A one-commit repository and `apps` pipeline files (app0, app1, ...) that follow it, each with the one build
    step `build`; returns the pipelines folder."""
    bare, _ = small_repo(scratch, name)
    pipelines = os.path.join(scratch, f"{name}-pipelines")
    os.makedirs(pipelines)
    for index in range(apps):
        with open(os.path.join(pipelines, f"app{index}.yml"), "w") as f:
            f.write(f"repository: {bare}\ndeploy_to: {scratch}/{name}-deploy/app{index}\nbuild:\n  - {build}\n")
    return pipelines


def memory_case(binary, scratch, apps):
    pipelines = many_apps(scratch, "memory", apps, "make")
    hooks = os.path.join(scratch, "memory-hooks.json")
    with open(hooks, "w") as f:
        json.dump([{"id": f"app{i}", "execute-command": "/bin/true"} for i in range(apps)], f)
    peer_port = free_port()
    daemon = start_daemon(binary, pipelines, os.path.join(scratch, "memory-state"), free_port())
    peer = start_peer(hooks, peer_port)
    try:
        # Idle means after the start-up catch-up has deployed every app's branch head once, as a daemon that has
        # been up a while is: the figure is what it keeps, not what a burst of deployments holds for a moment.
        wait_apps_idle(daemon)
        time.sleep(5)
        pid = daemon.process.pid
        ours, theirs = rss_kib(pid), rss_kib(peer.pid)
        (our_pss, our_uss), (their_pss, their_uss) = pss_uss_kib(pid), pss_uss_kib(peer.pid)
        mb = lambda kib: round(kib / 1024, 1)
        return {"case": "memory", "apps": apps, "slipway_rss_mb": mb(ours), "slipway_pss_mb": mb(our_pss),
                "slipway_uss_mb": mb(our_uss), "webhook_rss_mb": mb(theirs), "webhook_pss_mb": mb(their_pss),
                "webhook_uss_mb": mb(their_uss), "ratio": round(ours / max(theirs, 1), 2),
                "goal_mb": 30 if apps <= 100 else 60}
    finally:
        daemon.stop(grace=20)
        processes.end(peer, grace=20)


def wait_apps_idle(daemon, seconds=600):
    """Waits until no app of the daemon is deploying, then until its CPU is quiet."""
    deadline = time.time() + seconds
    while any(a["status"] == "deploying" for a in daemon.get("/api/v1/apps")["apps"]):
        if time.time() > deadline:
            raise RuntimeError(f"the deployments did not end within {seconds} s")
        time.sleep(0.5)
    wait_until_idle(daemon.process.pid)


def churn_case(binary, scratch, apps, deployments):
    """Idle memory after `deployments` deployments (rounds of one manual deploy per app), against the same daemon's
    idle memory after its start-up catch-up: what grows with time rather than with apps."""
    pipelines = many_apps(scratch, "churn", apps, "true")
    daemon = start_daemon(binary, pipelines, os.path.join(scratch, "churn-state"), free_port())
    try:
        wait_apps_idle(daemon)
        time.sleep(5)
        pid = daemon.process.pid
        start = rss_kib(pid)
        started = time.perf_counter()
        made = 0
        while made < deployments:
            for index in range(min(apps, deployments - made)):
                status, answer = daemon.request("POST", f"/api/v1/apps/app{index}/deploy", {})
                if status != 202:
                    raise RuntimeError(f"a deploy was answered {status}: {answer!r}")
                made += 1
            wait_apps_idle(daemon)
            if made % 1000 < apps:
                log(f"    {made} deployments, RSS {rss_kib(pid) / 1024:.1f} MB")
        seconds = time.perf_counter() - started
        time.sleep(5)
        end = rss_kib(pid)
        newest = daemon.get("/api/v1/apps/app0/deployments?limit=100")["deployments"]
        failed = [d["id"] for d in newest if d["status"] != "succeeded"]
        if failed:
            raise RuntimeError(f"deployments of app0 did not succeed, so the memory says nothing: {failed}")
        mb = lambda kib: round(kib / 1024, 1)
        return {"case": "churn", "apps": apps, "deployments": made, "seconds": round(seconds),
                "rss_start_mb": mb(start), "rss_end_mb": mb(end), "growth_mb": mb(end - start)}
    finally:
        daemon.stop(grace=20)


# --- one repository, many apps -------------------------------------------------------------------------------

def dir_bytes(path):
    """The bytes of the files under `path`, each inode once (as `du -sb` counts them)."""
    return int(run(["du", "-sb", path]).stdout.split()[0])


def fetch_count(daemon):
    """The fetches the daemon has made so far, from slipway_fetch_duration_seconds_count on /metrics."""
    _, text = daemon.request("GET", "/metrics")
    counts = re.findall(r"^slipway_fetch_duration_seconds_count\{[^}]*\} (\d+)", text, re.M)
    return sum(int(count) for count in counts)


def deliver_push(daemon, secret, head, clone_url, delivery):
    """A signed GitHub push delivery for `head`; returns the deployments it made."""
    body = json.dumps(minimal_push(head, clone_url), separators=(",", ":")).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    status, answer = daemon.request("POST", "/hooks/github", body, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": "sha256=" + signature})
    if status >= 400:
        raise RuntimeError(f"the delivery answered {status}: {answer!r}")
    return answer["deployments"]


def monorepo_case(binary, scratch, apps):
    """`apps` apps on one repository served over git://, each deploying its own folder (`paths:`): the mirrors' size
    against one `git clone --mirror`, the fetches one push costs, and push-to-live for a change to one service."""
    secret = "bench-secret"
    repo = WorkRepo(os.path.join(scratch, "mono-work"), os.path.join(scratch, "served", "mono.git"), GIT_ENV)
    rng = random.Random(23)
    for commit in range(10):
        for index in range(apps):
            text = "".join(rng.choice("abcdefghij \n") for _ in range(6000))
            repo.write(f"services/s{index}/main-{commit}.txt", text)
        repo.commit(f"commit {commit}")
    repo.push()
    port = free_port()
    served = subprocess.Popen(["git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
                               "--base-path=" + os.path.join(scratch, "served"), os.path.join(scratch, "served")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"git://127.0.0.1:{port}/mono.git"
    pipelines = os.path.join(scratch, "mono-pipelines")
    os.makedirs(pipelines)
    for index in range(apps):
        with open(os.path.join(pipelines, f"s{index}.yml"), "w") as f:
            f.write(f"repository: {url}\ndeploy_to: {scratch}/mono-deploy/s{index}\n"
                    f"paths: [\"services/s{index}/**\"]\nbuild:\n  - \"true\"\n")
    state = os.path.join(scratch, "mono-state")
    daemon = start_daemon(binary, pipelines, state, free_port(), extra=["--webhook-secret", secret])
    try:
        # The catch-up at start-up deploys every app's first commit.
        for index in range(apps):
            daemon.wait_finished(first_deployment(daemon, f"s{index}")["id"], timeout=300)
        mirror = os.path.join(scratch, "mono-clone.git")
        git("clone", "-q", "--mirror", url, mirror, env=GIT_ENV)
        ours, theirs = dir_bytes(os.path.join(state, "repos")), dir_bytes(mirror)

        samples, fetches = [], []
        for change in range(5):
            repo.write("services/s0/main-0.txt", f"change {change}\n")
            head = repo.commit(f"change {change}")
            before = fetch_count(daemon)
            start = time.time()
            repo.push()
            made = deliver_push(daemon, secret, head, url, f"change-{change}")
            if [d["app"] for d in made] != ["s0"]:
                raise RuntimeError(f"a change to one service deployed {made!r}")
            daemon.wait_finished(made[0]["id"], timeout=120)
            samples.append((time.time() - start) * 1000)
            fetches.append(fetch_count(daemon) - before)
        return {"case": "monorepo", "apps": apps, "mirrors_bytes": ours, "git_mirror_bytes": theirs,
                "ratio": round(ours / theirs, 2), "goal": 1.2, "fetches_per_push": max(fetches),
                "push_to_live_ms_median": round(statistics.median(samples), 1)}
    finally:
        daemon.stop(grace=20)
        processes.end(served, grace=5)


# --- caches between releases ------------------------------------------------------------------------------------

CACHE_PIPELINE = """cache:
  - path: .venv
    key: [requirements.txt]
build:
  - test -x .venv/bin/python || python3 -m venv .venv
  - .venv/bin/python -m pip install --disable-pip-version-check -q {source} -r requirements.txt
"""


def first_deployment(daemon, app, timeout=60):
    """The app's first deployment, once there is one."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        deployments = daemon.get(f"/api/v1/apps/{app}/deployments")["deployments"]
        if deployments:
            return deployments[-1]
        time.sleep(0.1)
    raise RuntimeError(f"{app} was not deployed at start-up")


def cache_case(binary, scratch, deploys):
    """A Python app whose build makes a virtualenv and installs a few packages: the deploys after the first (same
    requirements, another file changed) against the first. The packages come from a local folder of wheels when
    SLIPWAY_BENCH_WHEELS names one, else from PyPI."""
    wheels = os.environ.get("SLIPWAY_BENCH_WHEELS")
    source = f"--no-index --find-links {wheels}" if wheels else ""
    repo = WorkRepo(os.path.join(scratch, "py-work"), os.path.join(scratch, "py.git"), GIT_ENV)
    repo.write("requirements.txt", "flask==3.0.3\nrequests==2.32.3\nrich==13.7.1\n")
    repo.write("app.py", "print('hello')\n")
    repo.commit("first")
    repo.push()
    pipelines = os.path.join(scratch, "py-pipelines")
    os.makedirs(pipelines)
    with open(os.path.join(pipelines, "py.yml"), "w") as f:
        f.write(f"repository: {repo.bare}\ndeploy_to: {scratch}/py-deploy\n" + CACHE_PIPELINE.format(source=source))
    daemon = start_daemon(binary, pipelines, os.path.join(scratch, "py-state"), free_port())
    try:
        durations = []
        for index in range(deploys):
            if index:
                repo.write("app.py", f"print('hello {index}')\n")
                repo.commit(f"change {index}")
                repo.push()
                _, deployment = daemon.request("POST", "/api/v1/apps/py/deploy", {"ref": "main"})
            else:
                deployment = first_deployment(daemon, "py")  # the catch-up at start-up deploys the first commit
            finished = daemon.wait_finished(deployment["id"], timeout=600)
            if finished["status"] != "succeeded":
                raise RuntimeError(f"deployment {deployment['id']} {finished['status']}: {finished.get('error')}")
            durations.append(finished["duration_ms"])
        later = statistics.median(durations[1:])
        return {"case": "cache", "deploys": deploys, "first_ms": durations[0], "later_ms_median": later,
                "ratio": round(later / durations[0], 3), "goal": 0.2, "wheels": bool(wheels)}
    finally:
        daemon.stop(grace=20)


def big_file_case(binary, scratch, megabytes):
    """The daemon's peak resident memory while it deploys a commit that adds one file of `megabytes` MB (random,
    so git stores it whole), against the file's size; and its memory once the deploy has ended. The peak is the
    kernel's own high-water mark (VmHWM), reset just before the deploy through /proc/PID/clear_refs."""
    _, repo = small_repo(scratch, "big")
    pipelines = os.path.join(scratch, "big-pipelines")
    os.makedirs(pipelines)
    with open(os.path.join(pipelines, "big.yml"), "w") as f:
        f.write(f"repository: {repo.bare}\ndeploy_to: {scratch}/big-deploy\nkeep_releases: 1\nbuild:\n  - \"true\"\n")
    daemon = start_daemon(binary, pipelines, os.path.join(scratch, "big-state"), free_port())
    try:
        daemon.wait_finished(first_deployment(daemon, "big")["id"], timeout=120)  # the start-up catch-up
        with open(os.path.join(repo.work, "big.bin"), "wb") as f:
            for _ in range(megabytes):
                f.write(os.urandom(1 << 20))
        repo.commit("a big file", "big.bin")
        repo.push()
        pid = daemon.process.pid
        wait_until_idle(pid)
        before = status_kib(pid, "VmRSS")
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        _, deployment = daemon.request("POST", "/api/v1/apps/big/deploy", {"ref": "main"})
        finished = daemon.wait_finished(deployment["id"], timeout=300)
        if finished["status"] != "succeeded":
            raise RuntimeError(f"deployment {deployment['id']} {finished['status']}: {finished.get('error')}")
        peak = status_kib(pid, "VmHWM")
        time.sleep(5)
        after = status_kib(pid, "VmRSS")
        exported = os.path.getsize(os.path.join(scratch, "big-deploy", "current", "big.bin"))
        mb = lambda kib: round(kib / 1024, 1)
        return {"case": "bigfile", "file_mb": round(exported / (1 << 20), 1), "rss_before_mb": mb(before),
                "rss_peak_mb": mb(peak), "rss_after_mb": mb(after), "growth_mb": mb(peak - before),
                "ratio": round((peak - before) / 1024 / (exported / (1 << 20)), 2), "goal": 1.0}
    finally:
        daemon.stop(grace=20)


# --- the report -----------------------------------------------------------------------------------------------

NOTES = [
    "Notes:",
    "- `git push → first step` runs the real post-receive hook and `slipway notify`; it includes git's own",
    "  transfer of the push, so it is an upper bound on Slipway's part.",
    "- The fetch from a local path hard-links the source's packs and loose objects instead of copying them, like",
    "  `git clone --local` (an alternate only across file systems; see GitKit's InPlaceFetch.swift); over `git://`",
    "  it negotiates from the refs that moved (see GitKit's NetworkFetch.swift).",
    "- GET /api/v1/apps answers 89 KB where the bare route answers 15 bytes, and the encoded answer is cached, so",
    "  its ratio is set mostly by the kernel's loopback copy and by wrk reading the body on the same two cores (a",
    "  perf profile shows no Slipway function above 3% of the time); it moves with the machine's state.",
    "- The webhook case runs twice: a minimal payload with only the fields Slipway reads, and GitHub's documented",
    "  push example at its real size, which adnanh/webhook also parses.",
    "- Idle memory: RSS counts every page of a file the daemon has touched in full, shared or not: the binary's",
    "  code and data (the Swift runtime and Foundation are linked in by script/build-release), libcrypto for",
    "  libgit2's SSH transport, libc and SQLite; the kernel maps code in 64 KiB runs around each page used.",
    "  PSS and USS show what the daemon itself holds.",
    "",
]


def webhook_row(r):
    shape = "GitHub's documented example" if r.get("realistic") else "minimal payload"
    size = f", {shape}, {r['payload_bytes']:,} bytes" if "payload_bytes" in r else ""
    size += ", PostgreSQL store" if r.get("store") == "postgres" else ""
    return [f"| signed GitHub push deliveries{size} | {r['slipway_per_s']:.0f}/s | adnanh/webhook {r['webhook_per_s']:.0f}/s | {r['ratio']:.2f} | ≥ 2.0 |"]


def memory_rows(r):
    rows = [f"| idle resident memory (RSS), {r['apps']} apps | {r['slipway_rss_mb']} MB | adnanh/webhook, {r['apps']} hooks: {r['webhook_rss_mb']} MB | {r['ratio']:.2f} | ≤ {r.get('goal_mb', 30)} MB |"]
    if "slipway_pss_mb" in r:
        rows.append(f"| idle memory without shared libraries counted in full: PSS / USS | {r['slipway_pss_mb']} / {r['slipway_uss_mb']} MB | {r['webhook_pss_mb']} / {r['webhook_uss_mb']} MB | – | – |")
    return rows


# The table rows of each case, from its raw result.
ROWS = {
    "export": lambda r: [f"| export {r['files']} files, {r['bytes'] // 1_000_000} MB, {r['where']} | {r['slipway_ms']:.0f} ms | git checkout {r['git_ms']:.0f} ms | {r['ratio']:.2f} | ≤ 1.0 |"],
    "fetch": lambda r: [f"| fetch 1 commit, {r['commits']} commits, {r['refs']} refs, {r['transport']} | {r['slipway_ms']:.1f} ms | git fetch {r['git_ms']:.1f} ms | {r['ratio']:.2f} | ≤ 1.5 |"],
    "ls-remote": lambda r: [f"| ls-remote {r['refs']} refs, {r['transport']} | {r['slipway_ms']:.2f} ms | git ls-remote {r['git_ms']:.2f} ms | {r['ratio']:.2f} | < 1.0 |"],
    "deploy": lambda r: [f"| deploy overhead, {r['files']} files, {r['steps']} `true` steps | {r['overhead_ms']:.1f} ms (total {r['total_ms']:.0f}, export {r['export_ms']:.0f}, steps {r['steps_ms']:.0f}) | – | – | ≤ 50 ms |"],
    "api": lambda r: [f"| GET /api/v1/apps, {r['apps']} apps, {r['deployments']} deployments ({r['body_bytes']} bytes){', PostgreSQL store' if r.get('store') == 'postgres' else ''} | {r['slipway_rps']:.0f} req/s | bare route {r['bare_rps']:.0f} req/s | {r['ratio']:.2f} | ≥ 0.5 |"],
    "webhook": webhook_row,
    "latency": lambda r: [f"| git push → first step, {r['pushes']} pushes | median {r['push_to_first_step_ms_median']} ms, p90 {r['push_to_first_step_ms_p90']} ms | – | – | ≤ 100 ms |"],
    "memory": memory_rows,
    "churn": lambda r: [f"| idle RSS after {r['deployments']} deployments of {r['apps']} apps ({r['seconds']} s), against the same daemon idle after its start-up catch-up | {r['rss_end_mb']} MB | {r['rss_start_mb']} MB | +{r['growth_mb']} MB | grows with apps, not time |"],
    "monorepo": lambda r: [
        f"| mirrors of {r['apps']} apps on one repository (git://) | {r['mirrors_bytes'] / 1e6:.1f} MB | git clone --mirror {r['git_mirror_bytes'] / 1e6:.1f} MB | {r['ratio']:.2f} | ≤ 1.2 |",
        f"| fetches per push, {r['apps']} apps on one repository | {r['fetches_per_push']} | – | – | 1 |",
        f"| push → live for a one-service change, {r['apps']} apps on one repository | median {r['push_to_live_ms_median']} ms | – | – | – |"],
    "cache": lambda r: [f"| Python deploy with unchanged requirements (venv cached) vs the first{', local wheels' if r['wheels'] else ', from PyPI'} | {r['later_ms_median']:.0f} ms | first deploy {r['first_ms']:.0f} ms | {r['ratio']:.2f} | ≤ 0.2 |"],
    "bigfile": lambda r: [f"| daemon's peak memory growth deploying a commit with one {r['file_mb']:.0f} MB file (RSS {r['rss_before_mb']} MB before, {r['rss_peak_mb']} at the peak, {r['rss_after_mb']} 5 s after) | {r['growth_mb']} MB | the file: {r['file_mb']} MB | {r['ratio']:.2f} | ≤ 1.0 |"],
    "proxy": lambda r: [
        f"| requests through an app's public port (`slipway forward`), nginx as the app, {r['connections']} connections | {r['forwarded_rps']:.0f} req/s, p99 {r['forwarded_p99_ms']} ms | the app's own port: {r['direct_rps']:.0f} req/s, p99 {r['direct_p99_ms']} ms | {r['ratio']:.2f} (p99 {r['p99_ratio']:.2f}) | ≥ 0.8 (p99 < 2.0) |"]
        + ([f"| the same through nginx's TCP proxy (`stream`, 1 worker) | {r['nginx_stream_rps']:.0f} req/s, p99 {r['nginx_stream_p99_ms']} ms | the app's own port | {r['nginx_stream_ratio']:.2f} | – |",
            f"| `slipway forward` against nginx's TCP proxy | {r['forwarded_rps']:.0f} req/s | nginx stream {r['nginx_stream_rps']:.0f} req/s | {r['vs_nginx_stream']:.2f} | – |"]
           if "nginx_stream_rps" in r else []),
}


def other_sections():
    """The sections written by the fault, load and fuzz runs, and by hand for issue 23's cases measured apart
    (bench/results/fast-deploys.md), when they exist."""
    lines = []
    results_dir = os.path.join(ROOT, "bench", "results")
    for name in ["faults", "load", "fuzz", "fast-deploys"]:
        path = os.path.join(results_dir, f"{name}.md")
        if os.path.exists(path):
            with open(path) as f:
                lines += [f.read().rstrip(), ""]
    return lines


def markdown(results, command, started, quick):
    machine = f"{platform.node()}: {platform.system()} {platform.release()} {platform.machine()}, {os.cpu_count()} cores"
    lines = [
        "# Benchmark results",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine}" + (" (quick form)" if quick else "") + ".",
        "",
        f"Command: `{command}`",
        "",
        "Every figure was measured against its peer in the same run, alternating them; medians are reported, and",
        "`ratio` is Slipway's figure over the peer's (for times, lower is better; for rates, higher is better).",
        "",
        "| case | Slipway | peer | ratio | goal |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines += ROWS[r["case"]](r) if r["case"] in ROWS else []
    lines += ["", "The raw results, one JSON object per case:", "", "```"]
    lines += [json.dumps(r, sort_keys=True) for r in results]
    lines += ["```", ""]
    lines += NOTES
    lines += other_sections()
    return "\n".join(lines)


# --- the run --------------------------------------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release", help="the folder with slipway and slipway-bench")
    parser.add_argument("--quick", action="store_true", help="smaller trees and fewer runs (a smoke test)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    parser.add_argument("--only", default="", help="comma-separated cases to run (default: all)")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing; rewrite the report from bench/results/compare.json and the other sections")
    args = parser.parse_args()
    args.raw = os.path.join(ROOT, "bench", "results", "compare.json")
    if os.path.realpath(args.out) != os.path.realpath(parser.get_default("out")):
        # A report written elsewhere (an --only run, say) keeps its raw results beside it, not over the full run's.
        args.raw = os.path.splitext(args.out)[0] + ".json"
    return args


def report_only(args):
    with open(args.raw) as f:
        saved = json.load(f)
    started = datetime.datetime.fromisoformat(saved["started"])
    with open(args.out, "w") as f:
        f.write(markdown(saved["results"], saved["command"], started, saved["quick"]))
    log(f"wrote {args.out}")


# A real project's tree (the bare repositories under /opt/swift-packages hold one or two commits each).
REAL_REPOSITORY = os.environ.get("SLIPWAY_BENCH_REAL_REPOSITORY", "/opt/swift-packages/apple/swift-crypto.git")


def real_looking_history(source, work, bare, commits):
    """`bare`: the tree of `source` with `commits` commits on top, each changing a line in 1% of its text files,
    then repacked as git's gc would (`--depth=50 --window=250`), so that most blobs are deltas in one pack, as in a
    repository with years of history. Returns how many commits it has."""
    git("clone", "-q", source, work, env=GIT_ENV)
    files = [path for path in git("ls-files", cwd=work, env=GIT_ENV).splitlines()
             if os.path.isfile(os.path.join(work, path)) and not os.path.islink(os.path.join(work, path))]
    texts = []
    for path in files:
        with open(os.path.join(work, path), "rb") as f:
            if b"\0" not in f.read(8192):
                texts.append(path)
    rng = random.Random(23)
    for index in range(commits):
        for path in rng.sample(texts, max(1, len(texts) // 100)):
            full = os.path.join(work, path)
            with open(full, "rb") as f:
                lines = f.read().split(b"\n")
            lines.insert(rng.randrange(len(lines) + 1), f"// change {index}".encode())
            with open(full, "wb") as f:
                f.write(b"\n".join(lines))
        git("commit", "-q", "-am", f"change {index}", cwd=work, env=GIT_ENV)
    git("clone", "-q", "--bare", work, bare, env=GIT_ENV)
    git("repack", "-q", "-a", "-d", "-f", "--depth=50", "--window=250", cwd=bare, env=GIT_ENV)
    return int(git("rev-list", "--count", "HEAD", cwd=bare, env=GIT_ENV))


def git_cases(args, binary, shm, disk, want):
    """export, fetch and ls-remote: GitKit against the git command, through slipway-bench."""
    results = []
    files, commits = (3000, 3000) if args.quick else (15000, 25000)
    runs = "3" if args.quick else "7"
    if want("export"):
        log("export")
        big = os.path.join(shm, "big.git")
        bench(binary, "make-repo", "--files", str(files), "--commits", "3", big)
        for where, directory in [("tmpfs", shm), ("disk", disk)]:
            r = bench(binary, "export", "--repo", big, "--runs", runs, "--dir", directory)
            r["where"] = where
            results.append(r)
    if want("export-history"):
        log("export of a tree with real history")
        history = os.path.join(shm, "real-history.git")
        commits = real_looking_history(REAL_REPOSITORY, os.path.join(shm, "real-history-work"), history,
                                       60 if args.quick else 300)
        r = bench(binary, "export", "--repo", history, "--runs", runs, "--dir", shm)
        r["where"] = f"tmpfs, {os.path.basename(REAL_REPOSITORY)} with {commits} commits of history in deltas"
        results.append(r)
    if want("fetch") or want("ls-remote"):
        log("fetch and ls-remote")
        history = os.path.join(shm, "history.git")
        bench(binary, "make-repo", "--files", "2000", "--commits", str(commits), "--tags", "200", "--branches", "70",
              "--average-bytes", "3000", history)
        for transport in ["local", "git", "ssh"]:
            if want("fetch"):
                results.append(bench(binary, "fetch", "--repo", history, "--runs", runs, "--transport", transport,
                                     "--dir", shm, "--port", str(free_port())))
            if want("ls-remote"):
                results.append(bench(binary, "ls-remote", "--repo", history, "--transport", transport, "--dir", shm,
                                     "--port", str(free_port())))
    if want("fetch"):
        log("fetch over ssh:// of a real tree")
        real = os.path.join(shm, "real-history.git")
        if not os.path.exists(real):
            real_looking_history(REAL_REPOSITORY, os.path.join(shm, "real-history-work"), real, 60 if args.quick else 300)
        r = bench(binary, "fetch", "--repo", real, "--runs", runs, "--transport", "ssh", "--dir", shm)
        r["transport"] = f"ssh, {os.path.basename(REAL_REPOSITORY)}'s tree with real-looking history"
        results.append(r)
    return results


def daemon_cases(args, binary, shm, disk, want):
    """deploy, api, webhook, latency and memory: the daemon against its peers."""
    results = []
    if want("deploy"):
        log("deploy overhead")
        small = os.path.join(shm, "small.git")
        bench(binary, "make-repo", "--files", "1000", "--commits", "2", small)
        results.append(bench(binary, "deploy", "--repo", small, "--runs", "10" if args.quick else "30"))
    if want("api"):
        log("status API")
        results.append(bench(binary, "api", "--duration", "3" if args.quick else "8", "--rounds", "1" if args.quick else "3"))
    if want("api-pg"):
        log("status API, PostgreSQL store")
        with PostgresServer() as server:
            results.append(bench(binary, "api", "--duration", "3" if args.quick else "8",
                                 "--rounds", "1" if args.quick else "3", "--store", server.url))
    if want("webhook-pg"):
        scratch = os.path.join(os.environ.get("SLIPWAY_WEBHOOK_DIR", disk), "webhook-pg")
        log("webhook ingestion, PostgreSQL store (each delivery id written before its answer)")
        with PostgresServer() as server:
            results.append(webhook_case(binary, scratch + "-minimal", 3 if args.quick else 8, 1 if args.quick else 5,
                                        store=server.url))
        log("webhook ingestion, GitHub's documented example, PostgreSQL store")
        with PostgresServer() as server:
            results.append(webhook_case(binary, scratch + "-example", 3 if args.quick else 8,
                                        1 if args.quick else 3, realistic=True, store=server.url))
    if want("webhook"):
        log("webhook ingestion")
        scratch = os.path.join(os.environ.get("SLIPWAY_WEBHOOK_DIR", disk), "webhook")
        results.append(webhook_case(binary, scratch + "-minimal", 3 if args.quick else 8, 1 if args.quick else 5))
        log("webhook ingestion, GitHub's documented example at its real size")
        results.append(webhook_case(binary, scratch + "-example", 3 if args.quick else 8, 1 if args.quick else 3,
                                    realistic=True))
    if want("latency"):
        log("push to first step")
        results.append(latency_case(binary, disk, 5 if args.quick else 20))
    if want("memory"):
        for apps in (100, 1000):
            log(f"idle memory, {apps} apps")
            results.append(memory_case(binary, os.path.join(disk, f"memory-{apps}"), apps))
    if want("churn"):
        log("idle memory after 10,000 deployments")
        results.append(churn_case(binary, os.path.join(disk, "churn"), 100, 1000 if args.quick else 10000))
    if want("monorepo"):
        log("one repository, many apps")
        results.append(monorepo_case(binary, os.path.join(disk, "monorepo"), 30))
    if want("cache"):
        log("caches between releases")
        results.append(cache_case(binary, os.path.join(disk, "cache"), 2 if args.quick else 4))
    if want("bigfile"):
        log("a 100 MB file in a commit")
        results.append(big_file_case(binary, os.path.join(disk, "bigfile"), 100))
    if want("proxy"):
        log("the public port's forwarder")
        results.append(proxy_case(binary, os.path.join(shm, "proxy"), 3 if args.quick else 8, 1 if args.quick else 3))
    return results


def main():
    args = parse_args()
    if args.report_only:
        report_only(args)
        return
    binary = os.path.abspath(args.bin)
    started = datetime.datetime.now(datetime.timezone.utc)
    command = "bench/compare/run" + (" --quick" if args.quick else "")
    only = set(filter(None, args.only.split(",")))
    want = lambda case: not only or case in only

    shm = tempfile.mkdtemp(prefix="slipway-compare-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    disk = tempfile.mkdtemp(prefix="slipway-compare-", dir=os.path.join(ROOT, ".build"))
    results = []
    try:
        results += git_cases(args, binary, shm, disk, want)
        results += daemon_cases(args, binary, shm, disk, want)
    finally:
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(disk, ignore_errors=True)

    for r in results:
        log(json.dumps(r, sort_keys=True))
    os.makedirs(os.path.dirname(args.raw), exist_ok=True)
    with open(args.raw, "w") as f:
        json.dump({"started": started.isoformat(), "command": command, "quick": args.quick, "results": results}, f, indent=1)
    with open(args.out, "w") as f:
        f.write(markdown(results, command, started, args.quick))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
