"""The daemon under test (two real apps with deployments done), schemathesis against its OpenAPI document,
and checks of the two Server-Sent Events routes, which schemathesis cannot read to the end."""

from __future__ import annotations

import base64
import collections
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from harness import sse, web
from harness.daemon import Daemon
from harness.git import WorkRepo, identity_env
from webhooks import Target

TOKEN = "fuzz-token"
DAEMON_SECRET = "fuzz-webhook-secret"
BETA_SECRET = "beta-own-secret"

ALPHA_PIPELINE = """\
repository: {bare}
deploy_to: {root}/deploy/alpha
keep_releases: 3
build:
  - "true"
activate:
  - name: mark
    run: echo "$SLIPWAY_COMMIT" > "$SLIPWAY_SHARED_DIR/live"
rollback:
  - "true"
"""

BETA_PIPELINE = """\
repository: file://{bare}
deploy_to: {root}/deploy/beta
webhook_secret: ${{BETA_SECRET}}
env:
  GREETING: hello
build:
  - name: stamp
    run: echo "building $SLIPWAY_COMMIT"
    timeout: 1m
health:
  command: "true"
  timeout: 5s
"""


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


def make_repositories(root: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """alpha and beta, each a bare repository with three commits; returns their commits and bare paths."""
    env = identity_env("Fuzz", "fuzz@example.com", home=root)
    commits: dict[str, list[str]] = {}
    bare: dict[str, str] = {}
    for app in ("alpha", "beta"):
        bare[app] = os.path.join(root, "repos", f"{app}.git")
        repo = WorkRepo(os.path.join(root, "work", app), bare[app], env)
        commits[app] = []
        for number in range(1, 4):
            repo.write("README", f"{app} {number}\n")
            commits[app].append(repo.commit(f"{app}: change {number}", "README"))
        repo.push("HEAD:refs/heads/main")
    return commits, bare


def start_fixture(binary: str, root: str) -> Fixture:
    """Two apps, each with a bare repository of three commits: alpha (signed with the daemon's secret, two
    deployments, so it has a release to roll back to) and beta (its own webhook_secret, one deployment)."""
    commits, bare = make_repositories(root)
    pipelines = os.path.join(root, "pipelines")
    os.makedirs(pipelines)
    with open(os.path.join(pipelines, "alpha.yml"), "w") as handle:
        handle.write(ALPHA_PIPELINE.format(bare=bare["alpha"], root=root))
    with open(os.path.join(pipelines, "beta.yml"), "w") as handle:
        handle.write(BETA_PIPELINE.format(bare=bare["beta"], root=root))
    daemon = Daemon(binary, pipelines, os.path.join(root, "state"),
                    args=["--token", TOKEN, "--webhook-secret", DAEMON_SECRET],
                    log_path=os.path.join(root, "daemon.log"), env=dict(os.environ, BETA_SECRET=BETA_SECRET))
    port = daemon.start()
    fixture = Fixture(root, daemon, port, commits, bare, [])
    daemon.wait_apps(["alpha", "beta"])
    for app, ref in (("alpha", commits["alpha"][0]), ("alpha", "main"), ("beta", "main")):
        status, body = web.request(port, "POST", f"/api/v1/apps/{app}/deploy", {"ref": ref}, fixture.auth())
        if status != 202:
            raise RuntimeError(f"POST /api/v1/apps/{app}/deploy answered {status} {body!r}")
        done = web.wait_finished(port, body["id"])
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


class Shapes:
    """Checks event data against the OpenAPI document's schemas, when jsonschema and PyYAML are there."""

    def __init__(self, openapi_text: str | None, problems: list[str]):
        self.problems = problems
        self.validators = {}
        try:
            import jsonschema
            import yaml
            document = yaml.safe_load(openapi_text)
            for name in ("Deployment", "DeploymentWithSteps"):
                self.validators[name] = jsonschema.Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})
        except Exception:  # noqa: BLE001 - checking shapes is a bonus here
            pass

    def check(self, name: str, data: str, where: str) -> None:
        try:
            value = json.loads(data)
        except ValueError:
            self.problems.append(f"{where}: data is not JSON: {data[:120]!r}")
            return
        if name in self.validators:
            errors = list(self.validators[name].iter_errors(value))
            if errors:
                self.problems.append(f"{where}: breaks the {name} schema: {errors[0].message[:200]}")


def check_sse(fixture: Fixture, openapi_text: str | None) -> dict:
    """GET /api/v1/events: opens with a keep-alive comment, then carries a Deployment per change (one is
    started here). GET /api/v1/deployments/{id}/log as a stream: the log lines, then `event: end` with the
    final DeploymentWithSteps."""
    problems: list[str] = []
    shapes = Shapes(openapi_text, problems)
    events_seen = check_event_stream(fixture, shapes, problems)
    log_id = fixture.deployment_ids[-1]
    log_status, log_type, log_text, log_error = sse.read(fixture.port, f"/api/v1/deployments/{log_id}/log",
                                                         lambda t: False, 15)
    if log_error or log_status != 200 or not log_type.startswith("text/event-stream"):
        problems.append(f"/api/v1/deployments/{log_id}/log as a stream: {log_status} {log_type!r} {log_error or ''}")
    ends = [data for name, data in sse.parse(log_text) if name == "end"]
    if len(ends) != 1:
        problems.append(f"/api/v1/deployments/{log_id}/log: {len(ends)} `event: end` in the stream, expected 1 (and then the end)")
    for data in ends:
        shapes.check("DeploymentWithSteps", data, f"/api/v1/deployments/{log_id}/log event: end")
    return {"problems": problems, "events_seen": events_seen, "log_events": len(sse.parse(log_text))}


def check_event_stream(fixture: Fixture, shapes: Shapes, problems: list[str]) -> int:
    """Listens to /api/v1/events while a rollback runs; returns how many deployment events it carried."""
    collected: dict = {}

    def listen() -> None:
        collected["result"] = sse.read(fixture.port, "/api/v1/events",
                                       lambda t: "event: deployment" in t and '"status":"succeeded"' in t.replace(" ", ""), 30)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)
    status, body = web.request(fixture.port, "POST", "/api/v1/apps/alpha/rollback", b"", fixture.auth())
    new_id = body.get("id") if isinstance(body, dict) else None
    if status != 202 or new_id is None:
        problems.append(f"POST /api/v1/apps/alpha/rollback answered {status} {body!r}; no event to watch")
    else:
        web.wait_finished(fixture.port, new_id)
        fixture.deployment_ids.append(new_id)
    listener.join(35)
    events_status, content_type, text, error = collected.get("result", (0, "", "", "no answer"))
    if error or events_status != 200:
        problems.append(f"/api/v1/events: {events_status} {error or ''}")
    if not content_type.startswith("text/event-stream"):
        problems.append(f"/api/v1/events: Content-Type {content_type!r}")
    if not text.startswith(": keep-alive"):
        problems.append(f"/api/v1/events does not open with ': keep-alive': {text[:60]!r}")
    deployment_events = [data for name, data in sse.parse(text) if name == "deployment"]
    if new_id is not None and not deployment_events:
        problems.append("/api/v1/events carried no `event: deployment` for the rollback")
    for data in deployment_events:
        shapes.check("Deployment", data, "/api/v1/events")
    return len(deployment_events)
