#!/usr/bin/env python3
"""Bad input (issue 6): schemathesis against the API, the pipeline loader fuzzed through `slipway validate`,
and the forge webhook parsers fuzzed against a running daemon. See `bench/fuzz/run --help`.

Defects (any of them makes the exit status 1):
  * schemathesis: a 5xx, or an answer that breaks the OpenAPI document (status code, content type, headers,
    body schema); its other checks are reported with a triage but do not fail the run;
  * pipelines: a crash (signal, exit status other than 0/1), a hang, an error without a positive
    FILE:LINE:COLUMN (or one outside the file), a rejected seed file (the SPEC example must load);
  * webhooks: a 5xx, a dropped connection or a hang, a status other than the contract's, an answer that breaks
    its schema; and afterwards the daemon must still be alive and answer /healthz;
  * the Server-Sent Events routes not behaving as documented; the daemon dying or logging a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ folders in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import api  # noqa: E402
import pipelines  # noqa: E402
import webhooks  # noqa: E402
from harness import cli, report, web  # noqa: E402
from harness.log import err as log  # noqa: E402
from harness.scratch import Scratch  # noqa: E402

# What we know about schemathesis findings that are not hard failures; matched on (check, operation regex).
TRIAGE = [
    ("unsupported_method", r".*",
     "product (minor): a method the document does not list on a known path answers 404 `there is no such route`; "
     "RFC 9110 §15.5.6 wants 405 with an Allow header. Not in SPEC.md either way."),
    ("positive_data_acceptance", r"POST /hooks/push",
     "seen so far, expected: the gated hook's `gate.object_directories` must be git's quarantine directories "
     "inside the app's repository, which no schema can say (the document's description does); any other path is "
     "answered 400 `... is not an object directory of <app>'s repository`, and nothing is deployed from it."),
    ("negative_data_rejection", r"POST /api/v1/apps/\{app\}/(deploy|rollback)",
     "OpenAPI/product mismatch (minor): the document types `ref` and `to` as non-null, but the daemon takes "
     "`{\"ref\": null}` / `{\"to\": null}` as if the field were absent and answers 202. Either the document says "
     "`type: [string, \"null\"]` (and [integer, string, null]) or the daemon answers 400."),
    ("ignored_auth", r".*",
     "check the operation's `security`: the daemon accepted a request without the token or with a wrong one."),
]


def triage(failure: dict) -> str:
    for check, operation, text in TRIAGE:
        if failure["check"] == check and re.search(operation, failure.get("operation") or ""):
            return text
    return "untriaged: see the reproduction" + (" (a hard failure: a 5xx or an answer that breaks the document)" if failure["hard"] else "")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/fuzz/run", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yaml-cases", type=int, default=5000, help="mutated pipeline files (default 5000)")
    parser.add_argument("--webhook-cases", type=int, default=2000, help="webhook deliveries (default 2000)")
    parser.add_argument("--schemathesis-examples", type=int, default=100,
                        help="schemathesis --max-examples per operation (default 100; 0 skips schemathesis)")
    parser.add_argument("--schemathesis-timeout", type=float, default=1800, help="seconds before schemathesis is stopped (default 1800)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for everything (default 1)")
    parser.add_argument("--batch-size", type=int, default=500, help="pipeline files per `slipway validate` run (default 500)")
    parser.add_argument("--file-timeout", type=float, default=15, help="seconds one pipeline file may take (default 15)")
    cli.add_run_arguments(parser, kept="files, reports, daemon log")
    args = parser.parse_args()
    cli.check_binary(parser, args)
    return args


class Fuzz:
    """The parts of one run, in order; each adds to `results` and `defects`."""

    def __init__(self, args: argparse.Namespace, root: str):
        self.args = args
        self.root = root
        self.defects: list[str] = []
        self.results: dict = {}
        self.fixture = None

    def fuzz_pipelines(self) -> None:
        """1. The pipeline loader, no daemon needed."""
        args = self.args
        log(f"pipelines: {args.yaml_cases} mutated files in {self.root}/pipelines-fuzz")
        folder = os.path.join(self.root, "pipelines-fuzz")
        os.makedirs(folder)
        outcome = pipelines.run_pipeline_fuzz(args.slipway, args.yaml_cases, args.seed, folder, args.batch_size,
                                              file_timeout=args.file_timeout, log=log)
        self.results["pipelines"] = outcome
        for defect in outcome.defects:
            origin = (defect["mutations"][0] if defect["seed"] == "hazard" else
                      f"seed {defect['seed']} + {', '.join(defect['mutations'] or ['nothing'])}")
            self.defects.append(f"pipeline {defect['case']}.yml ({origin}, {defect['size']} bytes): "
                                f"{defect['kind']}: {defect['detail'][:300]}")

    def start_daemon(self) -> None:
        """2. The daemon with two real apps."""
        log("daemon: two apps, three deployments")
        self.fixture = api.start_fixture(self.args.slipway, os.path.join(self.root, "daemon"))
        status, openapi_text = web.request(self.fixture.port, "GET", "/api/v1/openapi.yaml")
        self.openapi_text = openapi_text if isinstance(openapi_text, str) else json.dumps(openapi_text)
        if status != 200:
            self.defects.append(f"GET /api/v1/openapi.yaml answered {status}")

    def check_sse(self) -> None:
        """3. The two event streams (schemathesis leaves them out: they do not end on their own)."""
        log("sse: /api/v1/events and /api/v1/deployments/{id}/log")
        sse = api.check_sse(self.fixture, self.openapi_text)
        self.results["sse"] = sse
        self.defects += [f"sse: {problem}" for problem in sse["problems"]]

    def run_schemathesis(self) -> None:
        """4. schemathesis."""
        args = self.args
        if args.schemathesis_examples <= 0:
            return
        log(f"schemathesis: --max-examples {args.schemathesis_examples}, --seed {args.seed}")
        schemathesis = api.run_schemathesis(self.fixture, args.schemathesis_examples, args.seed, self.root,
                                            args.schemathesis_timeout, log)
        self.results["schemathesis"] = schemathesis
        if schemathesis.get("error"):
            self.defects.append(f"schemathesis: {schemathesis['error']}")
        for failure in schemathesis.get("failures", []):
            failure["triage"] = triage(failure)
            if failure["hard"]:
                self.defects.append(f"schemathesis {failure['check']} on {failure['operation']}: {failure['title']}: "
                                    f"{(failure['message'] or '').splitlines()[0]} ({failure['request']} -> {failure['status']})")
        if not web.request(self.fixture.port, "GET", "/healthz")[0] == 200:
            self.defects.append("the daemon stopped answering /healthz during schemathesis")

    def fuzz_webhooks(self) -> None:
        """5. The webhook parsers."""
        log(f"webhooks: {self.args.webhook_cases} deliveries")
        hooks = webhooks.run_webhook_fuzz(self.fixture.port, self.args.webhook_cases, self.args.seed,
                                          self.fixture.targets, api.DAEMON_SECRET, self.openapi_text, log=log)
        self.results["webhooks"] = hooks
        for defect in hooks["defects"]:
            self.defects.append(f"webhook #{defect['case']} {defect['forge']} {defect['kind']} ({defect['size']} bytes"
                                f"{', chunked' if defect['chunked'] else ''}): {'; '.join(defect['problems'])[:300]}")

    def check_still_alive(self) -> None:
        """6. Still alive? Then stopped, and its log read for a crash."""
        port, daemon = self.fixture.port, self.fixture.daemon
        health_status, health = web.request(port, "GET", "/healthz", timeout=10)
        apps_status, _ = web.request(port, "GET", "/api/v1/apps", timeout=10)
        alive = daemon.alive()
        self.results["after"] = {"healthz": health_status, "apps": apps_status, "alive": alive}
        if health_status != 200 or health != {"status": "ok"}:
            self.defects.append(f"/healthz answered {health_status} {health!r} after the fuzzing")
        if apps_status != 200:
            self.defects.append(f"/api/v1/apps answered {apps_status} after the fuzzing")
        if not alive:
            self.defects.append(f"the daemon died (exit status {daemon.process.returncode})")
        exit_status = daemon.stop(grace=40.0)
        self.results["after"]["exit_status"] = exit_status
        crash = daemon.crash_lines()
        if crash:
            self.defects.append(f"the daemon log shows a crash: {crash[:3]}")
        if exit_status not in (0, None):
            self.defects.append(f"the daemon exited {exit_status} after SIGTERM")

    def run(self) -> None:
        try:
            self.fuzz_pipelines()
            self.start_daemon()
            self.check_sse()
            self.run_schemathesis()
            self.fuzz_webhooks()
            self.check_still_alive()
        except (RuntimeError, subprocess.CalledProcessError) as error:
            self.defects.append(f"the run broke: {error}")
        finally:
            if self.fixture is not None and self.fixture.daemon.exit_status is None:
                self.fixture.daemon.stop(grace=40.0)


def main() -> int:
    args = parse_args()
    command = report.command_line("bench/fuzz/run")
    date = report.stamp(report.utc_now())
    version = report.binary_version(args.slipway)
    scratch = Scratch("fuzz")
    started = time.monotonic()
    fuzz = Fuzz(args, scratch.root)
    fuzz.run()
    total_seconds = time.monotonic() - started

    rendered = render(fuzz.results, fuzz.defects, args, total_seconds)
    print(rendered["text"], flush=True)
    if args.out:
        section = rendered["markdown"].format(command=command, date=date, machine=report.machine_description(),
                                              slipway=f"`{args.slipway}` ({version})")
        report.write(args.out, section, append=args.append)
    scratch.finish(args.keep or bool(fuzz.defects),
                   f"kept {scratch.root} (pipeline defects in pipelines-fuzz/defects/, schemathesis-report/, daemon/daemon.log)",
                   log)
    return 1 if fuzz.defects else 0


# ----------------------------------------------------------------------------------------------------------
# The report: each part's lines for the terminal (text) and for bench/RESULTS.md (md)


def render(results: dict, defects: list[str], args, seconds: float) -> dict:
    text: list[str] = []
    md: list[str] = ["## Fuzz: bad input (`bench/fuzz`)", "", "- Command: `{command}`", "- Date: {date}",
                     "- Machine: {machine}", "- Slipway: {slipway}, seed " + str(args.seed), f"- Took {seconds:.0f}s", ""]
    parts = [(pipelines_part, results.get("pipelines")), (sse_part, results.get("sse")),
             (schemathesis_part, results.get("schemathesis")), (webhooks_part, results.get("webhooks")),
             (after_part, results.get("after"))]
    for part, result in parts:
        if result:
            part(result, args, text, md)
    result_part(defects, text, md)
    markdown = "\n".join(line.replace("{", "{{").replace("}", "}}") if not re.search(r"\{(command|date|machine|slipway)\}", line) else line
                         for line in md) + "\n"
    return {"text": "\n".join(text), "markdown": markdown}


def pipelines_part(outcome, args, text: list[str], md: list[str]) -> None:
    line = (f"pipelines: {args.yaml_cases} files: {outcome.loaded} loaded, {outcome.rejected} rejected with a position, "
            f"{len(outcome.defects)} defects ({outcome.batches} batches of up to {args.batch_size}, "
            f"{outcome.solo_runs} big alias files alone, {outcome.reruns} single-file runs, "
            f"slowest single file {outcome.slowest[0]:.1f}s ({outcome.slowest[1] or '-'}), {outcome.seconds:.0f}s)")
    text.append(line)
    md += ["### Pipeline loader (`slipway validate`)", "",
           "| files | loaded | rejected with file:line:column | defects | time |", "| --- | --- | --- | --- | --- |",
           f"| {args.yaml_cases} | {outcome.loaded} | {outcome.rejected} | {len(outcome.defects)} | {outcome.seconds:.0f}s |", ""]
    top = sorted(outcome.messages.items(), key=lambda item: -item[1])[:8]
    if top:
        md += ["Most frequent messages: " + "; ".join(f"`{k}` ({v})" for k, v in top), ""]


def sse_part(sse: dict, args, text: list[str], md: list[str]) -> None:
    text.append(f"sse: {sse['events_seen']} deployment events seen, {sse['log_events']} log events; "
                f"{len(sse['problems'])} problems")
    md += ["### Server-Sent Events", "", f"`/api/v1/events`: {sse['events_seen']} `deployment` events; "
           f"`/api/v1/deployments/{{id}}/log` stream: {sse['log_events']} events; problems: {len(sse['problems'])}", ""]


def schemathesis_part(st: dict, args, text: list[str], md: list[str]) -> None:
    if st.get("error") and "checks" not in st:
        text.append(f"schemathesis: {st['error']}")
        md += ["### schemathesis", "", f"Error: {st['error']}", ""]
        return
    failures = st.get("failures", [])
    hard = [f for f in failures if f["hard"]]
    checks = st.get("checks", {})
    passed = sum(v.get("success", 0) for v in checks.values())
    failed = sum(v.get("failure", 0) for v in checks.values())
    text.append(f"{st['version']}: {st['operations_tested']}/{st['operations_total']} operations tested "
                f"(streamEvents left out), {st['test_cases']} test cases, {passed} checks passed, {failed} failed; "
                f"{len(failures)} distinct failures ({len(hard)} hard), {len(st.get('errors', []))} errors, "
                f"{st['seconds']:.0f}s, exit {st['exit_status']}")
    for failure in failures:
        text.append(f"  - [{'HARD' if failure['hard'] else 'soft'}] {failure['check']} ({failure['code']}) on "
                    f"{failure['operation']} x{failure['count']}: {(failure['message'] or '').splitlines()[0]}")
        text.append(f"      e.g. {failure['request']}" + (f" body {failure['request_body']!r}" if failure['request_body'] else "")
                    + f" -> {failure['status']} {(failure['response'] or '')[:160]}")
        text.append(f"      triage: {failure['triage']}")
    md += ["### schemathesis (API against its OpenAPI document)", "",
           f"`{st['command']}` ({st['version']}; `streamEvents` is left out because the stream never ends; "
           "it is checked separately above)", "",
           f"- Operations: {st['operations_tested']} tested of {st['operations_total']} ({st['operations_selected']} selected)",
           f"- Test cases: {st['test_cases']}; phases: " + ", ".join(f"{k} {v}" for k, v in st.get("phases", {}).items()),
           f"- Checks: {passed} passed, {failed} failed; distinct failures: {len(failures)} ({len(hard)} hard: 5xx or schema)",
           "", "| check | passed | failed |", "| --- | --- | --- |"]
    md += [f"| {name} | {v.get('success', 0)} | {v.get('failure', 0)} |" for name, v in checks.items()]
    if failures:
        md += ["", "| failure | operation | count | triage |", "| --- | --- | --- | --- |"]
        md += [f"| {f['code']} {f['title']} | {f['operation']} | {f['count']} | {f['triage']} |" for f in failures]
    md.append("")


def webhooks_part(hooks: dict, args, text: list[str], md: list[str]) -> None:
    text.append(f"webhooks: {hooks['cases']} deliveries in {hooks['seconds']:.0f}s: "
                + ", ".join(f"{k}: {v}" for k, v in sorted(hooks['by_status'].items()))
                + f"; {len(hooks['defects'])} with a problem; answers checked against {hooks['shape_mode']}; "
                f"{hooks['send_errors']} bodies cut short by the daemon after it answered; slowest {hooks['slowest'][0]:.2f}s (#{hooks['slowest'][1]} {hooks['slowest'][2]})")
    text.append("  by forge: " + "; ".join(f"{forge} " + ", ".join(f"{k}: {v}" for k, v in sorted(c.items()))
                                       for forge, c in hooks["by_forge"].items()))
    text.append("  kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(hooks["kinds"].items())))
    md += ["### Webhook parsers", "", f"{hooks['cases']} deliveries to the four `/hooks/*` routes in {hooks['seconds']:.0f}s; "
           f"answers checked against {hooks['shape_mode']}.", "",
           "| forge | " + " | ".join(sorted(hooks["by_status"])) + " |", "| --- |" + " --- |" * len(hooks["by_status"])]
    md += [f"| {forge} | " + " | ".join(str(c.get(k, 0)) for k in sorted(hooks["by_status"])) + " |"
           for forge, c in hooks["by_forge"].items()]
    md += ["", "Kinds of delivery: " + ", ".join(f"{k} {v}" for k, v in sorted(hooks["kinds"].items())),
           f"Problems: {len(hooks['defects'])}", ""]


def after_part(after: dict, args, text: list[str], md: list[str]) -> None:
    text.append(f"after: /healthz {after['healthz']}, /api/v1/apps {after['apps']}, alive {after['alive']}, "
                f"exit status after SIGTERM {after.get('exit_status')}")
    md += [f"Afterwards: `/healthz` {after['healthz']}, daemon alive: {after['alive']}, exit status after SIGTERM: {after.get('exit_status')}.", ""]


def result_part(defects: list[str], text: list[str], md: list[str]) -> None:
    text.append("")
    if defects:
        text.append(f"RESULT: FAIL ({len(defects)} defects)")
        text += [f"  - {d}" for d in defects[:60]]
        if len(defects) > 60:
            text.append(f"  … and {len(defects) - 60} more")
        md += [f"**Result: FAIL** ({len(defects)} defects)", ""] + [f"- {d.replace('|', '¦')}" for d in defects[:40]] + [""]
    else:
        text.append("RESULT: PASS")
        md += ["**Result: PASS**", ""]


if __name__ == "__main__":
    sys.exit(main())
