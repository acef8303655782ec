"""The invariants every app must keep, whatever moment the daemon was killed at: the current link, the API and the
store agree on the live release; the live release was built completely by a deployment whose build, test and
migrate phases all succeeded; the kept releases on disk are the ones the store keeps; nothing is left running."""

import hashlib
import os
import time

from fixture import link_release, read_link

LEFTOVER_PREFIXES = (".current.tmp-", ".removing-")

# Disagreements seen right after a deployment ended that were gone 100-500 ms later (for example: a deployment is
# reported finished before it has pruned old releases). They are reported as notes, not violations.
TRANSIENTS = []


class App:
    def __init__(self, name, deploy_to, repo, build_steps, keep):
        self.name = name
        self.deploy_to = deploy_to
        self.repo = repo
        self.build_steps = build_steps
        self.keep = keep


def check_app(daemon, app, idle=True, after_success=False, settle_tries=5):
    """Violations of the invariants for one app, as strings, once they have had up to 0.5 s to settle."""
    first = None
    for attempt in range(settle_tries):
        problems = check_app_once(daemon, app, idle, after_success)
        if not problems:
            if first:
                TRANSIENTS.append("%s: %s (gone after %d ms)" % (app.name, "; ".join(first), attempt * 100))
            return []
        if first is None:
            first = problems
        time.sleep(0.1)
    return problems


def check_app_once(daemon, app, idle=True, after_success=False):
    """Violations of the invariants for one app, as strings. The daemon must be up (and idle when idle)."""
    target = read_link(os.path.join(app.deploy_to, "current"))
    live = link_release(target)
    summary = daemon.get("/api/v1/apps/%s" % app.name)
    releases = daemon.get("/api/v1/apps/%s/releases" % app.name)["releases"]
    problems = check_current(daemon, app, target, live, summary)
    if live is not None and os.path.isdir(os.path.join(app.deploy_to, "releases", str(live))):
        problems += check_live_release(daemon, app, live)
    kept = {r["id"]: r for r in releases}
    problems += check_kept(app, live, releases, kept)
    if idle:
        problems += check_idle(daemon, app)
    if after_success:
        problems += check_retention(daemon, app, live, kept)
    return problems


def check_current(daemon, app, target, live, summary):
    """The current link, the API and the store name the same live release."""
    problems = []
    api_current = (summary.get("current") or {}).get("id")
    if target is None:
        if api_current is not None:
            problems.append("there is no current link, but the API says release %s is live" % api_current)
    else:
        if live is None:
            problems.append("current -> %r is not a relative link to releases/<id>" % target)
        elif not os.path.isdir(os.path.join(app.deploy_to, "releases", str(live))):
            problems.append("current -> %s, which does not exist" % target)
        if api_current != live:
            problems.append("the API says release %s is live; the current link says %s" % (api_current, live))
    state = daemon.query("SELECT live_release FROM app_state WHERE app = ?", (app.name,))
    store_live = state[0]["live_release"] if state else None
    if target is not None and store_live != live:
        problems.append("app_state.live_release is %s; the current link says %s" % (store_live, live))
    return problems


def check_live_release(daemon, app, live):
    """The live release: known to the store, built by a deployment whose build, test and migrate all succeeded,
    complete on disk."""
    rows = daemon.query("SELECT * FROM [release] WHERE id = ?", (live,))
    if not rows:
        return ["live release %d is not in the store's release table" % live]
    release = rows[0]
    problems = []
    if release["app"] != app.name:
        problems.append("live release %d belongs to %s" % (live, release["app"]))
    if release["removed_at"] is not None:
        problems.append("live release %d is marked removed in the store" % live)
    steps = daemon.query("SELECT phase, name, status FROM step WHERE deployment_id = ?", (live,))
    for phase, count in app.build_steps.items():
        done = [s for s in steps if s["phase"] == phase and s["status"] == "succeeded"]
        if len(done) != count:
            problems.append(
                "live release %d: its deployment never finished its %s phase (%d of %d steps succeeded: %s)"
                % (live, phase, len(done), count,
                   ", ".join("%s=%s" % (s["name"][:30], s["status"]) for s in steps if s["phase"] == phase)
                   or "no step records"))
    deployment = daemon.query("SELECT [commit] FROM deployment WHERE id = ?", (live,))
    if deployment and deployment[0]["commit"] != release["commit"]:
        problems.append("live release %d records commit %s but its deployment built %s"
                        % (live, release["commit"][:10], deployment[0]["commit"][:10]))
    directory = os.path.join(app.deploy_to, "releases", str(live))
    tree = check_tree(directory, app.repo.tree(release["commit"]))
    if tree:
        problems.append("live release %d is incomplete: %s%s" % (live, "; ".join(tree[:5]),
                                                                 " ..." if len(tree) > 5 else ""))
    if not os.path.exists(os.path.join(directory, "_build", "complete")):
        problems.append("live release %d has no build output (_build/complete)" % live)
    return problems


def check_kept(app, live, releases, kept):
    """The store and the disk agree: the kept releases are on disk, complete, and nothing else is."""
    problems = []
    active = [r["id"] for r in releases if r.get("active")]
    if live is not None and active != [live]:
        problems.append("releases marked active in the API: %s; the live one is %s" % (active, live))
    releases_dir = os.path.join(app.deploy_to, "releases")
    on_disk = []
    for name in (os.listdir(releases_dir) if os.path.isdir(releases_dir) else []):
        if not name.isdigit():
            problems.append("stray entry releases/%s" % name)
            continue
        on_disk.append(int(name))
    for rid in sorted(on_disk):
        if rid not in kept and rid != live:
            problems.append("releases/%d is on disk but is neither a kept release nor the live one" % rid)
    for rid in sorted(kept):
        if rid not in on_disk:
            problems.append("the API lists kept release %d, but releases/%d is not on disk" % (rid, rid))
        elif rid != live:
            tree = check_tree(os.path.join(releases_dir, str(rid)), app.repo.tree(kept[rid]["commit"]))
            if tree:
                problems.append("kept release %d (a rollback target) is incomplete: %s" % (rid, "; ".join(tree[:5])))
    for name in (os.listdir(app.deploy_to) if os.path.isdir(app.deploy_to) else []):
        if name.startswith(LEFTOVER_PREFIXES):
            problems.append("leftover %s in deploy_to" % name)
    return problems


def check_idle(daemon, app):
    """Nothing of the app is queued or running, in the store."""
    problems = []
    stuck = daemon.query(
        "SELECT id, status, phase FROM deployment WHERE app = ? AND status IN ('running', 'queued')", (app.name,))
    for row in stuck:
        problems.append("deployment %d is still %s (phase %s)" % (row["id"], row["status"], row["phase"]))
    steps = daemon.query(
        "SELECT s.id, s.deployment_id, s.name, s.process_group, d.status FROM step s "
        "JOIN deployment d ON d.id = s.deployment_id WHERE d.app = ? AND s.status = 'running'", (app.name,))
    for row in steps:
        problems.append("step %d (%s) of deployment %d, which is %s, is still running in the store (process "
                        "group %s)" % (row["id"], row["name"][:30], row["deployment_id"], row["status"],
                                       row["process_group"]))
    return problems


def check_retention(daemon, app, live, kept):
    """After a success, no more releases are kept than keep_releases (and the live one)."""
    succeeded = daemon.query(
        "SELECT id FROM [release] WHERE app = ? AND succeeded = 1 AND removed_at IS NULL ORDER BY id DESC",
        (app.name,))
    allowed = {r["id"] for r in succeeded[:app.keep]} | ({live} if live is not None else set())
    extra = sorted(set(kept) - allowed)
    if extra:
        return ["retention: releases %s are kept beyond the newest %d succeeded and the live one" % (extra, app.keep)]
    return []


def blob_sha(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def check_tree(directory, entries, allowed_extra=("_build",)):
    """Problems with a release directory compared with the commit's tree; build output under allowed_extra."""
    problems = []
    for path, (mode, sha) in entries.items():
        problems += check_entry(os.path.join(directory, path), path, mode, sha)
    for base, dirs, names in os.walk(directory):
        relative_base = os.path.relpath(base, directory)
        if relative_base == ".":
            relative_base = ""
        if relative_base.split(os.sep)[0] in allowed_extra:
            continue
        for name in names + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            relative = os.path.join(relative_base, name) if relative_base else name
            if relative.split(os.sep)[0] in allowed_extra:
                continue
            if relative not in entries:
                problems.append("extra file %s" % relative)
    return problems


def check_entry(full, path, mode, sha):
    """Problems with one file of a release compared with its tree entry."""
    try:
        st = os.lstat(full)
    except OSError:
        return ["missing %s" % path]
    if mode == "120000":
        if not os.path.islink(full):
            return ["%s is not a symlink" % path]
        if blob_sha(os.readlink(full).encode()) != sha:
            return ["symlink %s has the wrong target" % path]
    elif mode in ("100644", "100755"):
        if not os.path.isfile(full) or os.path.islink(full):
            return ["%s is not a regular file" % path]
        problems = []
        with open(full, "rb") as f:
            if blob_sha(f.read()) != sha:
                problems.append("%s differs from the commit" % path)
        if (mode == "100755") != bool(st.st_mode & 0o100):
            problems.append("%s has the wrong run bit" % path)
        return problems
    return []
