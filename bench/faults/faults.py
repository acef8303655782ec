#!/usr/bin/env python3
"""Crash consistency and fault injection for Slipway (issue 6, "Proof under fire").

Run it through bench/faults/run:

    bench/faults/run [--kills 50] [--gate-kills 4] [--seed 1] [--slipway PATH] [--out FILE]

Six parts, each against the real `slipway serve` binary and real git repositories made here:

1. Crash consistency. The daemon is killed with SIGKILL at chosen moments of deploys and rollbacks: a target
   phase is picked per kill round-robin (fetch, checkout, build, test, migrate, switch, activate, health, for
   deploys and for rollbacks to kept releases, plus the watcher's network fetch over git:// through a slow
   proxy), the harness follows /api/v1/events until the deployment reaches that phase, waits a random few ms and
   kills. Half the switch rounds instead spin on readlink(current) and kill the moment the link moves; every
   other build round kills the moment the step's first process exists. Build and deploy health rounds make
   their step last 3 s, so that recovery has a live process group to end. The phase actually hit is read from
   (a copy of) the store after the kill. The daemon is restarted on the same state and the invariants are
   checked (see invariants.py and crash.Round); every 5 rounds and at the end a real `git push` through the installed
   hook must deploy (and a push notice for the git:// app).
2. A step fills the disk: deploy_to (and, in a second variant, the state too) on a 16 MiB tmpfs; a build step
   writes until the disk is full.
3. The mirror's remote disappears: the bare repository is moved away (for a local-path app and for a git://
   app); manual deploys, pushes, polls and rollbacks are tried; then the repository comes back.
4. The truth at push time (issue 16): the daemon is stopped (SIGKILL, then SIGTERM) and pushes go through the
   post-receive hook: at start-up the branch head is deployed by itself (trigger catch_up), once. A second
   `slipway serve` on the same state, while the first one's build step waits, exits 1 at once and touches nothing.
   With the pre-receive (--gate) hook, the daemon is SIGKILLed while the push's deployment waits in build, test,
   activate or health (--gate-kills rounds, in turn): the push must be refused, the branch and current stay where
   they were, the deployment is interrupted after a restart, and the next gated push is accepted.
5. Lost state (issue 18): the state directory is deleted, and (in a second case) an older copy of it is restored,
   next to a deploy_to with live and kept releases; the daemon starts again and ten deploys follow, some failing in
   build and one failing its health check: the releases on disk are adopted, new ids start above them, no live
   release is lost and current never dangles.
6. PostgreSQL (issue 19; --skip-postgres leaves it out): on a throwaway server (script/test-postgres), the database
   is stopped and started again while a build runs, for 3 s and for longer than a deployment's lease (30 s); and for
   3 s during a burst of 300 signed deliveries; and the daemon is SIGKILLed while a build runs. Nothing answered 2xx
   is lost, no error but 503 store_unavailable, the daemon recovers by itself, a deployment that lost its lease
   switches nothing and ends interrupted, no build runs twice, and the next push deploys.

The parts are crash.py, disk.py, remote.py, pushtime.py, state.py and postgres.py; fixture.py holds what they share (the run's context, the
repositories, the daemon and its store), invariants.py the checks, and bench/harness the helpers every harness
uses. Only the Python standard library is used. Exit status: 0 when no invariant was violated, 1 when one was, 2 when
the harness itself failed.
"""

import argparse
import os
import signal
import sys
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ folders in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from crash import CrashBench  # noqa: E402
from disk import disk_full  # noqa: E402
from fixture import Context  # noqa: E402
from harness import DEFAULT_SLIPWAY, HarnessError, report  # noqa: E402
from harness.log import out as log  # noqa: E402
from invariants import TRANSIENTS  # noqa: E402
from pushtime import push_time  # noqa: E402
from remote import remote_gone  # noqa: E402
from postgres import postgres_faults  # noqa: E402
from state import lost_state, state_full  # noqa: E402


# ----------------------------------------------------------------------------------------------------------------
# Reporting


def sorted_hits(counter, by_count=False):
    items = sorted(counter.items(), key=lambda kv: -kv[1]) if by_count else sorted(counter.items())
    return ", ".join("%s %d" % (k, v) for k, v in items)


def median_and_max_restart(crash):
    restarts = sorted(r["restart_ms"] for r in crash.rounds)
    return (restarts[len(restarts) // 2], restarts[-1]) if restarts else None


def crash_section(ctx, crash):
    lines = ["### Crash consistency (SIGKILL, restart on the same state)", ""]
    if not crash:
        return lines + ["- not run", ""]
    crash_violations = [t for p, t in ctx.violations if p == "crash"]
    lines.append("- Kills / invariant violations: **%d / %d**" % (crash.kills, len(crash_violations)))
    lines.append("- Pushes after restarts that had to deploy: %d, failed: %d" % (crash.push_checks, crash.push_failures))
    lines.append("- Phases hit (read from the store after each kill): %s" % sorted_hits(crash.hits, by_count=True))
    lines.append("- By kind: %s" % sorted_hits(crash.hits_by_kind))
    lines.append("")
    restart = median_and_max_restart(crash)
    if restart:
        lines.append("- Restart after a kill (recovery included) until the daemon listens: median %d ms, max %d ms"
                     % restart)
    lines.append("")
    lines.append("| # | target | trigger | hit (from the store) | deployment | delay ms | restart ms | violations |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in crash.rounds:
        lines.append("| %d | %s | %s | %s | %s | %.1f | %d | %d |" % (
            r["round"], r["target"], r["trigger"].replace("|", "/"), r["hit"], r["deployment"] or "-",
            r["delay_ms"], r["restart_ms"], r["violations"]))
    return lines + [""]


def check_lines(checks, notes, indent=""):
    """A scenario's checks and notes as Markdown list items."""
    return (["%s- %s: %s" % (indent, status, text) for status, text in checks]
            + ["%s- note: %s" % (indent, note) for note in notes])


def disk_section(disk):
    lines = ["### A step fills the disk", ""]
    if disk is None:
        lines.append("- not run")
    elif disk["skipped"]:
        lines.append("- SKIPPED: %s" % disk["skipped"])
    for variant in (disk or {}).get("variants", []):
        lines.append("- %s" % variant["name"])
        lines += check_lines(variant["checks"], variant["notes"], "  ")
    return lines + [""]


def gone_section(gone):
    lines = ["### The mirror's remote disappears", ""]
    if gone is None:
        lines.append("- not run")
    else:
        lines += check_lines(gone["checks"], gone["notes"])
    return lines + [""]


def cases_section(heading, result):
    """A part made of named cases, each with its checks and notes; without the closing blank line."""
    lines = ["### " + heading, ""]
    if result is None:
        return lines + ["- not run"]
    for title, checks in result["cases"]:
        lines.append("- %s" % title)
        lines += check_lines(checks.items, checks.notes, "  ")
    return lines


def push_section(push):
    lines = cases_section("The truth at push time (catch-up, one daemon per state, gated pushes under SIGKILL)", push)
    if push and push["rounds"]:
        lines += ["", "SIGKILL during a gated push, round by round (current: the release it links to):", "",
                  "| # | held in | killed in (store) | deployment | git push exit | current before / at the kill / "
                  "after the restart | deployment after the restart | next gated push | violations |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in push["rounds"]:
            lines.append("| %d | %s | %s | %s | %s | %s / %s / %s | %s | %s | %d |" % (
                r["round"], r["phase"], r.get("hit", "-"), r.get("deployment", "-"), r.get("push_exit", "-"),
                r.get("live_before"), r.get("link_at_kill"), r.get("link_after"), r.get("status_after", "-"),
                r.get("next_push", "-"), r["violations"]))
    return lines + [""]


def state_section(state):
    return cases_section("The state directory lost or restored next to a live deploy_to, and the state disk full",
                         state) + [""]


def transients_section():
    if not TRANSIENTS:
        return []
    lines = ["### Disagreements that settled by themselves (notes, not violations)", ""]
    for text in TRANSIENTS[:20]:
        lines.append("- %s" % text)
    if len(TRANSIENTS) > 20:
        lines.append("- ... %d more" % (len(TRANSIENTS) - 20))
    return lines + [""]


def markdown(ctx, command, started, elapsed, crash, disk, gone, push, state, pg):
    lines = [
        "## Fault injection: `bench/faults`",
        "",
        "- Command: `%s`" % command,
        "- Date: %s" % report.stamp(started),
        "- Machine: `%s`, %s cores" % (report.uname(), os.cpu_count()),
        "- Binary: `%s`" % ctx.slipway,
        "- Took %.0f s" % elapsed,
        "",
    ]
    lines += crash_section(ctx, crash) + disk_section(disk) + gone_section(gone) + push_section(push)
    lines += state_section(state)
    lines += cases_section("PostgreSQL away mid-deploy and mid-burst, and a SIGKILL mid-deploy on it", pg) + [""]
    lines += transients_section()
    lines.append("### Violations: %d" % len(ctx.violations))
    lines.append("")
    for part, text in ctx.violations:
        lines.append("- [%s] %s" % (part, text))
    if not ctx.violations:
        lines.append("- none")
    lines.append("")
    return "\n".join(lines)


def summary(ctx, crash, disk, gone, push, state, pg, elapsed):
    crash_violations = [t for p, t in ctx.violations if p == "crash"]
    log("")
    log("== summary ==")
    if crash:
        log("crash consistency: kills %d / invariant violations %d; pushes after restarts %d, failed %d"
            % (crash.kills, len(crash_violations), crash.push_checks, crash.push_failures))
        log("phases hit: " + sorted_hits(crash.hits, by_count=True))
        log("by kind:    " + sorted_hits(crash.hits_by_kind))
        restart = median_and_max_restart(crash)
        if restart:
            log("restart after a kill until listening: median %d ms, max %d ms" % restart)
    if disk:
        log("disk full: %s" % (disk["skipped"] or disk["status"]))
    if gone:
        log("remote gone: %s" % gone["status"])
    if push:
        log("truth at push time: %s (daemon down, SIGKILL and SIGTERM; a second daemon; %d SIGKILLs during gated "
            "pushes)" % (push["status"], len(push["rounds"])))
    if state:
        log("lost state: %s (the state deleted, and an older copy restored, each followed by 10 deploys; the "
            "state disk full in each phase)" % state["status"])
    if pg:
        log("postgres: %s (away 3 s and past the lease mid-build, away mid-burst of deliveries, SIGKILL mid-build)"
            % pg["status"])
    if TRANSIENTS:
        log("disagreements that settled within 0.5 s (notes): %d; first: %s" % (len(TRANSIENTS), TRANSIENTS[0]))
    log("violations: %d" % len(ctx.violations))
    for part, text in ctx.violations:
        log("  - [%s] %s" % (part, text))
    log("took %.0f s" % elapsed)


# ----------------------------------------------------------------------------------------------------------------
# The run


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="how many SIGKILLs (default 50; 8 for CI)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slipway", default=DEFAULT_SLIPWAY, help="the slipway binary (default %(default)s)")
    parser.add_argument("--out", help="write a Markdown section for bench/RESULTS.md here")
    parser.add_argument("--files", type=int, default=400, help="files in the crash app's repository")
    parser.add_argument("--skip-disk", action="store_true")
    parser.add_argument("--skip-remote", action="store_true")
    parser.add_argument("--skip-push", action="store_true", help="skip the push-time part (catch-up, a second "
                        "daemon, SIGKILL during gated pushes)")
    parser.add_argument("--gate-kills", type=int, default=4, help="SIGKILLs during gated pushes (default 4: "
                        "build, test, activate, health)")
    parser.add_argument("--skip-state", action="store_true", help="skip the lost-state part (the state deleted, and "
                        "an older copy restored, next to a live deploy_to)")
    parser.add_argument("--skip-postgres", action="store_true", help="skip the PostgreSQL part (the database away "
                        "mid-deploy and mid-burst, a SIGKILL mid-deploy)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args()


def timed(what, step, *args):
    mark = time.monotonic()
    value = step(*args)
    log("(%s took %.0f s)" % (what, time.monotonic() - mark))
    return value


def run_parts(ctx, args, clock):
    """Runs the six parts; returns (crash bench, disk-full, remote-gone, push-time, lost-state and PostgreSQL results, exit
    status)."""
    crash = disk = gone = push = state = pg = None
    status = 0
    try:
        crash = CrashBench(ctx)
        crash.setup()
        log("(setup took %.0f s)" % (time.monotonic() - clock))
        timed("crash consistency", crash.run)
        if not args.skip_disk:
            disk = timed("disk full", disk_full, ctx)
        if not args.skip_remote:
            gone = timed("remote gone", remote_gone, ctx)
        if not args.skip_push:
            push = timed("truth at push time", push_time, ctx)
        if not args.skip_state:
            state = timed("lost state", lost_state, ctx)
            full = timed("state disk full", state_full, ctx)
            state["cases"] += full["cases"]
            if full["status"] == "violations":
                state["status"] = "violations"
        if not args.skip_postgres:
            pg = timed("postgres", postgres_faults, ctx)
    except (HarnessError, KeyboardInterrupt, Exception) as error:
        traceback.print_exc()
        print("faults: the harness stopped: %s" % error, file=sys.stderr)
        status = 2
    finally:
        ctx.cleanup(args.keep or status == 2)
    return crash, disk, gone, push, state, pg, status


def main():
    args = parse_args()
    if not os.access(args.slipway, os.X_OK):
        print("faults: %s is not an executable slipway binary (use --slipway PATH)" % args.slipway, file=sys.stderr)
        return 2
    if args.kills < 0 or args.gate_kills < 0:
        print("faults: --kills and --gate-kills must be 0 or more", file=sys.stderr)
        return 2
    command = report.command_line("bench/faults/run")
    started = report.utc_now()
    clock = time.monotonic()

    # Short GIL switches: the thread that follows the event stream and the one that kills must not wait 5 ms for
    # each other.
    sys.setswitchinterval(0.0002)

    def terminate(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, terminate)

    ctx = Context(args)
    log("faults: slipway %s, seed %d, temporary directory %s" % (ctx.slipway, args.seed, ctx.root))
    crash, disk, gone, push, state, pg, status = run_parts(ctx, args, clock)
    elapsed = time.monotonic() - clock
    summary(ctx, crash, disk, gone, push, state, pg, elapsed)
    if args.out:
        report.write(args.out, markdown(ctx, command, started, elapsed, crash, disk, gone, push, state, pg))
        log("wrote %s" % args.out)
    if status:
        return status
    return 1 if ctx.violations else 0


if __name__ == "__main__":
    sys.exit(main())
