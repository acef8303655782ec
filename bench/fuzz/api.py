"""The daemon under test (two real apps with deployments done), schemathesis against its OpenAPI document,
and checks of the two Server-Sent Events routes, which schemathesis cannot read to the end."""

from __future__ import annotations

import base64
import collections
import glob
import http.client
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "load"))
from load import Daemon, http_json  # noqa: E402  (bench/load/load.py: the daemon wrapper, shared)

from webhooks import Target  # noqa: E402

TOKEN = "fuzz-token"
DAEMON_SECRET = "fuzz-webhook-secret"
BETA_SECRET = "beta-own-secret"
TERMINAL = {"succeeded", "failed", "cancelled", "superseded", "interrupted"}


@dataclass
class Fixture:
    root: str
    daemon: Daemon
    port: int
    commits: dict[str, list[str]]
    bare: dict[str, str]
    deployment_ids: list[int]
    targets: list[Target] = field(default_factory=list)

    def auth(self) -> dict:
        return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def git(*args, cwd=None, env=None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def wait_finished(port: int, deployment_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http_json(port, "GET", f"/api/v1/deployments/{deployment_id}")
        if status == 200 and body.get("status") in TERMINAL:
            return body
        time.sleep(0.1)
    raise RuntimeError(f"deployment {deployment_id} did not finish within {timeout:.0f}s")


def start_fixture(binary: str, root: str) -> Fixture:
    """Two apps, each with a bare repository of three commits: alpha (signed with the daemon's secret, two
    deployments, so it has a release to roll back to) and beta (its own webhook_secret, one deployment)."""
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=root, GIT_AUTHOR_NAME="Fuzz", GIT_AUTHOR_EMAIL="fuzz@example.com",
               GIT_COMMITTER_NAME="Fuzz", GIT_COMMITTER_EMAIL="fuzz@example.com")
    commits: dict[str, list[str]] = {}
    bare: dict[str, str] = {}
    pipelines = os.path.join(root, "pipelines")
    os.makedirs(pipelines)
    for app in ("alpha", "beta"):
        bare[app] = os.path.join(root, "repos", f"{app}.git")
        work = os.path.join(root, "work", app)
        os.makedirs(work)
        git("init", "-q", "--bare", "-b", "main", bare[app], env=env)
        git("init", "-q", "-b", "main", work, env=env)
        commits[app] = []
        for number in range(1, 4):
            with open(os.path.join(work, "README"), "w") as handle:
                handle.write(f"{app} {number}\n")
            git("add", "README", cwd=work, env=env)
            git("commit", "-q", "-m", f"{app}: change {number}", cwd=work, env=env)
            commits[app].append(git("rev-parse", "HEAD", cwd=work, env=env))
        git("push", "-q", bare[app], "HEAD:refs/heads/main", cwd=work, env=env)
    with open(os.path.join(pipelines, "alpha.yml"), "w") as handle:
        handle.write(f"repository: {bare['alpha']}\ndeploy_to: {root}/deploy/alpha\nkeep_releases: 3\n"
                     "build:\n  - \"true\"\nactivate:\n  - name: mark\n    run: echo \"$SLIPWAY_COMMIT\" > \"$SLIPWAY_SHARED_DIR/live\"\n"
                     "rollback:\n  - \"true\"\n")
    with open(os.path.join(pipelines, "beta.yml"), "w") as handle:
        handle.write(f"repository: file://{bare['beta']}\ndeploy_to: {root}/deploy/beta\nwebhook_secret: ${{BETA_SECRET}}\n"
                     "env:\n  GREETING: hello\nbuild:\n  - name: stamp\n    run: echo \"building $SLIPWAY_COMMIT\"\n    timeout: 1m\n"
                     "health:\n  command: \"true\"\n  timeout: 5s\n")
    daemon = Daemon(binary, ["--pipelines", pipelines, "--state", os.path.join(root, "state"), "--port", "0",
                             "--token", TOKEN, "--webhook-secret", DAEMON_SECRET],
                    os.path.join(root, "daemon.log"), env=dict(os.environ, BETA_SECRET=BETA_SECRET))
    port = daemon.start()
    fixture = Fixture(root, daemon, port, commits, bare, [])
    deadline = time.monotonic() + 30
    while True:
        status, body = http_json(port, "GET", "/api/v1/apps")
        if status == 200 and {a["name"] for a in body.get("apps", [])} >= {"alpha", "beta"}:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the daemon did not list alpha and beta: {body!r}")
        time.sleep(0.1)
    for app, ref in (("alpha", commits["alpha"][0]), ("alpha", "main"), ("beta", "main")):
        status, body = http_json(port, "POST", f"/api/v1/apps/{app}/deploy", json.dumps({"ref": ref}).encode(), fixture.auth())
        if status != 202:
            raise RuntimeError(f"POST /api/v1/apps/{app}/deploy answered {status} {body!r}")
        done = wait_finished(port, body["id"])
        if done["status"] != "succeeded":
            raise RuntimeError(f"the fixture's deployment {body['id']} of {app} ended {done['status']}: {done.get('error')}")
        fixture.deployment_ids.append(body["id"])
    fixture.targets = [
        Target("alpha", "file://" + bare["alpha"], DAEMON_SECRET, commits["alpha"]),
        Target("alpha", bare["alpha"] + "/", DAEMON_SECRET, commits["alpha"]),
        Target("beta", bare["beta"].removesuffix(".git"), BETA_SECRET, commits["beta"]),
        Target(None, "https://git.example.com/nobody/nothing.git", DAEMON_SECRET, ["%040x" % 0xabc]),
    ]
    return fixture


# ----------------------------------------------------------------------------------------------------------
# schemathesis


HARD_CHECKS = {  # a failure of one of these is a 5xx or an answer that breaks the OpenAPI document
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
    "response_schema_conformance",
}


def schemathesis_command() -> list[str] | None:
    for name in ("schemathesis", "st"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def ensure_schemathesis(log) -> list[str] | None:
    command = schemathesis_command()
    if command:
        return command
    log("  schemathesis is missing; installing it with pip")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "schemathesis"], check=False)
    return schemathesis_command()


def run_schemathesis(fixture: Fixture, examples: int, seed: int, workdir: str, timeout: float, log) -> dict:
    command = ensure_schemathesis(log)
    if command is None:
        return {"error": "schemathesis is not installed and pip could not install it"}
    version = subprocess.run(command + ["--version"], capture_output=True, text=True).stdout.strip()
    version = version.replace("schemathesis, version ", "schemathesis ")
    config = os.path.join(workdir, "schemathesis.toml")
    ids = fixture.deployment_ids + [max(fixture.deployment_ids) + 1000]
    with open(config, "w") as handle:
        handle.write(
            "# Real names and ids for the path parameters, so requests reach past the 404s.\n"
            "[dictionaries.apps]\nvalues = [\"alpha\", \"beta\", \"nosuchapp\"]\n"
            f"[dictionaries.ids]\nvalues = {json.dumps(ids)}\n"
            "[parameters]\n"
            "\"path.app\" = { dictionary = \"apps\", probability = 0.8 }\n"
            "\"path.id\" = { dictionary = \"ids\", probability = 0.8 }\n"
            "\"body.app\" = { dictionary = \"apps\", probability = 0.6 }\n")
    report_dir = os.path.join(workdir, "schemathesis-report")
    url = f"http://127.0.0.1:{fixture.port}/api/v1/openapi.yaml"
    argv = command + [
        "--config-file", config, "run", url, "--checks", "all", "-H", f"Authorization: Bearer {TOKEN}",
        "--seed", str(seed), "--max-examples", str(examples), "--request-timeout", "20", "--workers", "1",
        "--generation-database", "none", "--no-color", "--report", "ndjson,junit", "--report-dir", report_dir,
        "--exclude-operation-id", "streamEvents", "--suppress-health-check", "all",
    ]
    log("  " + shlex.join(a if not a.startswith("Authorization") else "Authorization: Bearer ***" for a in argv))
    started = time.monotonic()
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=workdir,
                                env=dict(os.environ, NO_COLOR="1", COLUMNS="120"))
        output, exit_status = result.stdout + result.stderr, result.returncode
    except subprocess.TimeoutExpired as error:
        output = (error.stdout or b"").decode() if isinstance(error.stdout, bytes) else (error.stdout or "")
        exit_status = None
    seconds = time.monotonic() - started
    with open(os.path.join(workdir, "schemathesis-output.txt"), "w") as handle:
        handle.write(output)
    summary = {"version": version, "exit_status": exit_status, "seconds": seconds, "examples": examples, "seed": seed,
               "command": shlex.join(["schemathesis"] + argv[1:]).replace(TOKEN, "$TOKEN"), "output_file":
               os.path.join(workdir, "schemathesis-output.txt")}
    if exit_status is None:
        summary["error"] = f"schemathesis did not finish within {timeout:.0f}s"
    reports = sorted(glob.glob(os.path.join(report_dir, "*.ndjson")))
    if not reports:
        summary.setdefault("error", "schemathesis wrote no NDJSON report; see " + summary["output_file"])
        summary["tail"] = output[-3000:]
        return summary
    summary.update(parse_ndjson(reports[-1]))
    match = re.search(r"={5,} SUMMARY ={5,}\n(.*)", output, re.S)
    summary["text_summary"] = match.group(1).strip() if match else output[-2500:]
    return summary


def parse_ndjson(path: str) -> dict:
    checks: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures: dict[tuple, dict] = {}
    operations_total = operations_selected = 0
    tested: set[str] = set()
    cases: set[str] = set()
    errors: list[str] = []
    phases: dict[str, str] = {}
    with open(path) as handle:
        for line in handle:
            event = json.loads(line)
            (name, data), = event.items()
            if name == "LoadingFinished":
                statistic = data.get("statistic", {}).get("operations", {})
                operations_total, operations_selected = statistic.get("total", 0), statistic.get("selected", 0)
            elif name == "PhaseFinished":
                phases[data["phase"]["name"]] = data["status"]
            elif name in ("NonFatalError", "FatalError"):
                errors.append(json.dumps(data)[:500])
            elif name == "ScenarioFinished":
                recorder = data.get("recorder", {})
                if re.match(r"^[A-Z]+ /", recorder.get("label", "")):
                    tested.add(recorder["label"])
                interactions = recorder.get("interactions", {})
                for case_id, results in recorder.get("checks", {}).items():
                    cases.add(case_id)
                    for result in results:
                        checks[result["name"]][result["status"]] += 1
                        if result["status"] != "failure":
                            continue
                        info = result.get("failure_info", {}).get("failure", {})
                        case = recorder.get("cases", {}).get(case_id, {}).get("value", {})
                        method = case.get("method") or ""
                        key = (result["name"], info.get("operation"), info.get("title"),
                               method if result["name"] == "unsupported_method" else "",
                               (info.get("message") or "").split("\n")[0][:120])
                        if key in failures:
                            failures[key]["count"] += 1
                            continue
                        interaction = interactions.get(case_id, {})
                        request = interaction.get("request", {})
                        response = interaction.get("response") or {}
                        body = request.get("body") or {}
                        failures[key] = {
                            "check": result["name"], "code": info.get("code"), "operation": info.get("operation"),
                            "title": info.get("title"), "message": info.get("message"), "count": 1,
                            "hard": result["name"] in HARD_CHECKS,
                            "request": f"{request.get('method', method)} {request.get('uri', case.get('path'))}",
                            "request_body": base64.b64decode(body["$base64"]).decode("utf-8", "replace")[:400]
                            if isinstance(body, dict) and "$base64" in body else None,
                            "request_headers": {k: v for k, v in (request.get("headers") or {}).items() if k.lower() != "authorization"},
                            "status": response.get("status_code"),
                            "response": base64.b64decode(response["content"]["$base64"]).decode("utf-8", "replace")[:400]
                            if isinstance(response.get("content"), dict) and "$base64" in response["content"] else None,
                        }
    return {
        "operations_total": operations_total, "operations_selected": operations_selected, "operations_tested": len(tested),
        "test_cases": len(cases), "checks": {k: dict(v) for k, v in sorted(checks.items())},
        "failures": list(failures.values()), "errors": errors, "phases": phases,
    }


# ----------------------------------------------------------------------------------------------------------
# Server-Sent Events


def read_sse(port: int, path: str, until, timeout: float, headers: dict | None = None) -> tuple[int, str, str, str | None]:
    """Reads an event stream until `until(text)` is true, the stream ends, or `timeout` passes.
    Returns (status, content type, text read, error)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    text, error = "", None
    try:
        connection.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        response = connection.getresponse()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(text):
            chunk = response.read1(65536)
            if not chunk:
                break
            text += chunk.decode("utf-8", "replace")
        return response.status, response.getheader("Content-Type", ""), text, None
    except (socket.timeout, TimeoutError):
        return 0, "", text, "timed out"
    except (OSError, http.client.HTTPException) as error:
        return 0, "", text, f"{type(error).__name__}: {error}"
    finally:
        connection.close()


def sse_events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((name, "\n".join(data)))
    return events


def check_sse(fixture: Fixture, openapi_text: str | None) -> dict:
    """GET /api/v1/events: opens with a keep-alive comment, then carries a Deployment per change (one is
    started here). GET /api/v1/deployments/{id}/log as a stream: the log lines, then `event: end` with the
    final DeploymentWithSteps."""
    import threading
    problems: list[str] = []
    validators = {}
    try:
        import jsonschema
        import yaml
        document = yaml.safe_load(openapi_text)
        for name in ("Deployment", "DeploymentWithSteps"):
            validators[name] = jsonschema.Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})
    except Exception:  # noqa: BLE001 - checking shapes is a bonus here
        pass

    def shape(name: str, data: str, where: str) -> None:
        try:
            value = json.loads(data)
        except ValueError:
            problems.append(f"{where}: data is not JSON: {data[:120]!r}")
            return
        if name in validators:
            errors = list(validators[name].iter_errors(value))
            if errors:
                problems.append(f"{where}: breaks the {name} schema: {errors[0].message[:200]}")

    collected: dict = {}

    def listen() -> None:
        collected["result"] = read_sse(fixture.port, "/api/v1/events",
                                       lambda t: "event: deployment" in t and '"status":"succeeded"' in t.replace(" ", ""), 30)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)
    status, body = http_json(fixture.port, "POST", "/api/v1/apps/alpha/rollback", b"", fixture.auth())
    new_id = body.get("id") if isinstance(body, dict) else None
    if status != 202 or new_id is None:
        problems.append(f"POST /api/v1/apps/alpha/rollback answered {status} {body!r}; no event to watch")
    else:
        wait_finished(fixture.port, new_id)
        fixture.deployment_ids.append(new_id)
    listener.join(35)
    events_status, content_type, text, error = collected.get("result", (0, "", "", "no answer"))
    if error or events_status != 200:
        problems.append(f"/api/v1/events: {events_status} {error or ''}")
    if not content_type.startswith("text/event-stream"):
        problems.append(f"/api/v1/events: Content-Type {content_type!r}")
    if not text.startswith(": keep-alive"):
        problems.append(f"/api/v1/events does not open with ': keep-alive': {text[:60]!r}")
    deployment_events = [data for name, data in sse_events(text) if name == "deployment"]
    if new_id is not None and not deployment_events:
        problems.append("/api/v1/events carried no `event: deployment` for the rollback")
    for data in deployment_events:
        shape("Deployment", data, "/api/v1/events")

    log_id = fixture.deployment_ids[-1]
    log_status, log_type, log_text, log_error = read_sse(fixture.port, f"/api/v1/deployments/{log_id}/log",
                                                         lambda t: False, 15)
    if log_error or log_status != 200 or not log_type.startswith("text/event-stream"):
        problems.append(f"/api/v1/deployments/{log_id}/log as a stream: {log_status} {log_type!r} {log_error or ''}")
    ends = [data for name, data in sse_events(log_text) if name == "end"]
    if len(ends) != 1:
        problems.append(f"/api/v1/deployments/{log_id}/log: {len(ends)} `event: end` in the stream, expected 1 (and then the end)")
    for data in ends:
        shape("DeploymentWithSteps", data, f"/api/v1/deployments/{log_id}/log event: end")
    return {"problems": problems, "events_seen": len(deployment_events), "log_events": len(sse_events(log_text))}
