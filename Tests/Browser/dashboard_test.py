#!/usr/bin/env python3
"""Drives Slipway's dashboard in headless Chromium against a real daemon.

It builds a throwaway git repository and pipeline, starts `slipway serve`, deploys through /hooks/push, and then
checks through the page what a user would see: the app card, a push showing up live without a reload, a commit
message full of HTML shown as plain text, the folded log of a finished deployment, the live log of a running one,
a deploy and a rollback made from the page (the rollback checked on disk), a failed deploy whose cause is shown
beside its error, and the token prompt of a --private daemon. It saves screenshots of the main views at 1280 and 375 px wide, light and dark.

    script/browser-test                                  # installs what is missing, then runs this
    python3 Tests/Browser/dashboard_test.py --slipway .build/debug/slipway [--screenshots DIR] [--port N]

The daemon gets this process's environment, so SLIPWAY_DASHBOARD_FILE=<path to dashboard.html> makes it serve the
page from disk. Exit status 0 when every check passed, 1 when one failed (with the reason), 2 for bad usage.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.dont_write_bytecode = True  # no __pycache__ folders in the source tree
sys.path.insert(0, str(ROOT / "bench"))

from harness import HarnessError  # noqa: E402  (bench/harness: the helpers the harnesses share)
from harness.daemon import Daemon  # noqa: E402
from harness.git import ZERO_SHA, WorkRepo, identity_env  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.scratch import Scratch  # noqa: E402

TIMEOUT = 20  # seconds, for every wait on the page
DEPLOY_TIMEOUT = 90  # seconds, for a deployment to finish (the machine may be busy)
XSS = "<img src=x onerror=alert(1)>"
TOKEN = "browser-test-token"

try:
    from selenium import webdriver
    from selenium.common.exceptions import (NoAlertPresentException, StaleElementReferenceException, TimeoutException,
                                            WebDriverException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover
    print("dashboard_test: selenium is missing: run script/browser-test, or pip install selenium", file=sys.stderr)
    sys.exit(2)


class Failure(Exception):
    """A check that did not hold."""


# ---------------------------------------------------------------------------------------------------- reporting

class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.current = None

    def step(self, name):
        self.current = name
        print(f"... {name}", flush=True)

    def ok(self, what):
        self.passed += 1
        print(f"ok {self.passed} - {what}", flush=True)

    def check(self, condition, what, detail=""):
        if not condition:
            self.failed += 1
            raise Failure(f"{what}" + (f": {detail}" if detail else ""))
        self.ok(what)


# ---------------------------------------------------------------------------------------------------- the browser

def make_driver():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        raise Failure("chromium and chromedriver are needed: apt-get install -y chromium chromium-driver (script/browser-test does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900",
                "--no-first-run", "--disable-extensions", "--lang=en-US"):
        options.add_argument(arg)
    # Leave any alert open so that the check for one sees it, instead of the driver dismissing it.
    options.set_capability("unhandledPromptBehavior", "ignore")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


class Page:
    def __init__(self, driver, base):
        self.d = driver
        self.base = base

    def wait(self, condition, what, timeout=TIMEOUT):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition())
        except TimeoutException:
            raise Failure(f"timed out after {timeout}s waiting for {what}") from None

    def css(self, selector, root=None):
        return (root or self.d).find_elements(By.CSS_SELECTOR, selector)

    def one(self, selector, what=None, root=None):
        return self.wait(lambda: (self.css(selector, root) or [None])[0], what or selector)

    def q(self, selector, prop="textContent"):
        """One property of the first element that matches, read in one step: the page may replace elements at any
        time, so a found element is not kept. `@name` reads an attribute. None when nothing matches."""
        return self.d.execute_script(
            "const e = document.querySelector(arguments[0]); if (!e) return null;"
            "const v = arguments[1][0] === '@' ? e.getAttribute(arguments[1].slice(1)) : e[arguments[1]];"
            "return typeof v === 'string' ? v.trim() : v", selector, prop)

    def qa(self, selector, prop="textContent"):
        """The same property of every element that matches."""
        return self.d.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => arguments[1][0] === '@' ?"
            " e.getAttribute(arguments[1].slice(1)) : e[arguments[1]])", selector, prop)

    def row(self, deployment_id):
        return self.one(f'[data-testid="deployment-row"][data-id="{deployment_id}"]', f"the history row of deployment {deployment_id}")

    def row_status(self, deployment_id):
        return self.q(f'[data-testid="deployment-row"][data-id="{deployment_id}"] [data-testid="deployment-status"]', "@data-status")

    def card(self, app):
        return self.one(f'[data-testid="app-card"][data-app="{app}"]', f"the app card of {app}")

    def click(self, el):
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
        el.click()

    def dialog_button(self, testid="confirm-button"):
        return self.one(f'dialog[open] [data-testid="{testid}"]', f"the {testid} of the open dialog")

    def no_alert(self):
        try:
            alert = self.d.switch_to.alert
            text = alert.text
        except NoAlertPresentException:
            return True
        raise Failure(f"an alert is open ({text!r}): the commit message ran as HTML")

    def hash(self):
        return self.d.execute_script("return location.hash")

    def go(self, hash_):
        self.d.execute_script("location.hash = arguments[0]", hash_)
        self.wait(lambda: self.hash() == hash_, f"the page to show {hash_}")

    def screenshots(self, folder, name):
        """Saves the current view at 1280 and 375 px wide, in light and dark mode."""
        # Notices from earlier actions would cover the view: dismiss them first.
        self.d.execute_script("document.querySelectorAll('.notice').forEach(n => n.remove())")
        shots = []
        for width, height in ((1280, 900), (375, 812)):
            for scheme in ("light", "dark"):
                self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                    "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
                self.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {
                    "features": [{"name": "prefers-color-scheme", "value": scheme}]})
                # Two animation frames: the new size and colours are laid out and painted.
                self.d.execute_async_script(
                    "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done()))")
                path = folder / f"{name}-{width}{'-dark' if scheme == 'dark' else ''}.png"
                if not self.d.save_screenshot(str(path)):
                    raise Failure(f"could not save {path}")
                shots.append(path)
        self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        return shots


# ---------------------------------------------------------------------------------------------------- the test

PIPELINE = """\
repository: {bare}
deploy_to: {deploy_to}
build:
  - ./build.sh
test:
  - name: check
    run: test -f index.html
activate:
  - echo activated
"""


# An app whose activate step starts its server inside the step (no setsid), so that Slipway ends the server when the
# step's shell exits and the health check then finds nothing.
BROKEN = """\
repository: {bare}
deploy_to: {deploy_to}
activate:
  - name: start the server
    run: sleep 60 &
health:
  command: "false"
  timeout: 1s
  interval: 200ms
"""


# An app that Slipway runs (`processes:`): one process that says it is up, then waits.
WORKER = """\
repository: {bare}
deploy_to: {deploy_to}
processes:
  worker:
    run: echo "worker of release ${{SLIPWAY_RELEASE_DIR##*/}} is up"; exec sleep 600
"""


def push_hook(daemon, before, after):
    status, body = daemon.request("POST", "/hooks/push", {"app": "demo", "ref": "refs/heads/main", "before": before, "after": after})
    if status != 202 or not body.get("deployments"):
        raise Failure(f"POST /hooks/push answered {status}: {body}")
    return body["deployments"][0]["id"]


def newest_row(page, after):
    """The id of the newest row in the history, once it is newer than `after` (else False, to keep waiting)."""
    ids = [int(i) for i in page.qa('[data-testid="deployment-row"]', "@data-id")]
    return max(ids, default=0) > after and max(ids)


class DashboardTest:
    """The checks, one method per step, in the order of `steps`; a step leaves what later ones need on self."""

    CARD = '[data-testid="app-card"][data-app="demo"]'

    def __init__(self, args, report, tmp, state):
        self.args = args
        self.report = report
        self.tmp = tmp
        self.state = state

    def steps(self):
        return [self.make_repository, self.start_daemon, self.first_deployment, self.app_list,
                self.push_without_reload, self.message_stays_text, self.card_follows_push, self.finished_log,
                self.deploy_from_page, self.rollback_from_page, self.take_screenshots, self.failure_shows_its_cause,
                self.processes_panel, self.console_so_far,
                self.private_daemon, self.errors_in_words, self.console_after_restart]

    def make_repository(self):
        args, tmp = self.args, self.tmp
        self.report.step("a bare repository with a first commit, and a pipeline")
        (tmp / "home").mkdir()
        env = identity_env("Ada Lovelace", "ada@example.com", home=str(tmp / "home"))
        bare = tmp / "app.git"
        self.repo = WorkRepo(str(tmp / "work"), str(bare), env)
        self.repo.write("index.html", "<h1>hello</h1>\n")
        self.build = Path(self.repo.write("build.sh", "#!/bin/sh\necho built > out.txt\necho 'build output: first'\n", mode=0o755))
        self.sha1 = self.repo.commit("first commit")
        self.repo.push()
        pipelines = tmp / "pipelines"
        pipelines.mkdir()
        (pipelines / "demo.yml").write_text(PIPELINE.format(bare=bare, deploy_to=tmp / "deploy"))
        for i in range(args.extra_apps):
            (pipelines / f"app-{i:03d}.yml").write_text(PIPELINE.format(bare=bare, deploy_to=tmp / f"deploy-{i:03d}"))

    def start_daemon(self):
        tmp = self.tmp
        self.report.step("the daemon")
        daemon = self.daemon = self.state["daemon"] = Daemon(
            self.args.slipway, tmp / "pipelines", tmp / "state", port=self.args.port or free_port(),
            log_path=tmp / "daemon.log", env=os.environ.copy(), cwd=tmp)
        daemon.start()
        self.report.check(daemon.request("GET", "/healthz")[0] == 200, f"slipway serve answers /healthz on port {daemon.port}")

    def first_deployment(self):
        # The branch was pushed before the daemon started, so its start-up catch-up may have queued the head
        # already; the push notice then deploys nothing more, and the catch-up's deployment is the first.
        self.report.step("the first deployment, through the start-up catch-up or /hooks/push")
        status, body = self.daemon.request(
            "POST", "/hooks/push", {"app": "demo", "ref": "refs/heads/main", "before": ZERO_SHA, "after": self.sha1})
        if status != 202:
            raise Failure(f"POST /hooks/push answered {status}: {body}")
        if body.get("deployments"):
            self.d1 = body["deployments"][0]["id"]
        else:
            _, listing = self.daemon.request("GET", "/api/v1/apps/demo/deployments")
            ours = [d for d in listing.get("deployments", []) if d["commit"] == self.sha1]
            if not ours:
                raise Failure(f"the push deployed nothing and no deployment of {self.sha1[:7]} exists: {listing}")
            self.d1 = ours[0]["id"]
        first = self.daemon.wait_finished(self.d1, DEPLOY_TIMEOUT)
        self.report.check(first["status"] == "succeeded", f"deployment {self.d1} succeeded", json.dumps(first))

    def app_list(self):
        report, card, sha1 = self.report, self.CARD, self.sha1
        report.step("the app list")
        driver = self.driver = self.state["driver"] = make_driver()
        page = self.page = Page(driver, self.daemon.url)
        driver.get(self.daemon.url + "/#/")
        page.card("demo")
        status = page.wait(lambda: page.q(f'{card} [data-testid="app-status"]'), "the status badge on the demo card")
        report.check(status == "idle" and page.q(f'{card} [data-testid="app-status"]', "@data-status") == "idle",
                     "the demo card says idle", status)
        page.wait(lambda: page.q(f'{card} [data-testid="release-sha"]') == sha1[:7], "the live release's short sha on the card")
        report.ok(f"the demo card shows the live release {sha1[:7]}")
        release_time = page.q(f'{card} [data-testid="app-release"] time', "outerHTML")
        report.check(bool(page.q(f'{card} [data-testid="app-release"] time', "@datetime")) and
                     bool(page.q(f'{card} [data-testid="app-release"] time', "@title")),
                     "the release time has a datetime and the exact local time in its title", str(release_time))
        rendered = driver.execute_script(
            "const m = performance.getEntriesByName('slipway:apps-rendered')[0]; return m ? m.startTime : null")
        if rendered is not None:
            apps = 1 + self.args.extra_apps
            self.state["render_ms"] = rendered
            report.ok(f"the app list rendered {rendered:.0f} ms after navigation start ({apps} app{'s' if apps > 1 else ''})")
        page.wait(lambda: page.q('[data-testid="live-indicator"]', "@data-state") == "live", "the live indicator to say live")
        report.ok("the live indicator says live")

    def push_without_reload(self):
        report, page, driver = self.report, self.page, self.driver
        report.step("a push shows up without a reload")
        page.click(page.one(f'{self.CARD} a.card-link'))
        page.wait(lambda: page.hash() == "#/apps/demo", "the app's page")
        page.row(self.d1)
        driver.execute_script("window.__slipwayNoReload = 'still here'")
        self.build.write_text("#!/bin/sh\necho built > out.txt\necho 'step one'\nsleep 3\necho 'step two'\n")
        self.repo.git("commit", "-q", "-am", f"{XSS} second")
        self.repo.push()
        self.sha2 = self.repo.head()
        d2 = self.d2 = push_hook(self.daemon, self.sha1, self.sha2)
        page.row(d2)
        report.ok(f"deployment {d2} appeared in the history without a reload")
        seen_running = page.wait(lambda: page.row_status(d2) in ("queued", "running", "succeeded") and page.row_status(d2), "its status")
        page.wait(lambda: page.row_status(d2) == "succeeded", f"deployment {d2} to turn succeeded in the history")
        report.ok(f"deployment {d2} turned succeeded in place (first seen as {seen_running})")
        badge = f'[data-testid="deployment-row"][data-id="{d2}"] [data-testid="deployment-status"]'
        word = page.q(badge)
        colour = page.d.execute_script("return getComputedStyle(document.querySelector(arguments[0])).color", badge)
        report.check(word == "succeeded" and colour not in ("rgb(0, 0, 0)", "rgb(31, 35, 40)"),
                     "the succeeded badge has its word and its own colour", f"{word!r} {colour}")
        report.check(driver.execute_script("return window.__slipwayNoReload") == "still here", "the page was not reloaded")

    def message_stays_text(self):
        report, page, driver = self.report, self.page, self.driver
        report.step("a commit message with HTML in it stays text")
        shown = page.q(f'[data-testid="deployment-row"][data-id="{self.d2}"] [data-testid="deployment-link"]', "innerText")
        report.check(shown == f"{XSS} second", "the history shows the message literally", shown)
        body_text = driver.execute_script("return document.body.textContent")
        report.check(XSS in body_text, "the DOM text holds '<img src=x onerror=alert(1)>'")
        imgs = driver.execute_script(
            "return [...document.querySelectorAll('img')].map(i => i.getAttribute('src') || '')")
        report.check(not any(src.endswith("x") for src in imgs), "no img element with src x exists", str(imgs))
        report.check(page.no_alert(), "no alert is open")

    def card_follows_push(self):
        report, page, card = self.report, self.page, self.CARD
        report.step("the app card follows the push")
        self.driver.back()
        page.wait(lambda: page.hash() in ("#/", ""), "the app list after going back")
        page.wait(lambda: page.q(f'{card} [data-testid="release-sha"]') == self.sha2[:7], "the demo card to show the second release")
        msg = page.q(f'{card} [data-testid="release-message"]', "innerText")
        report.check(msg == f"{XSS} second", "the card shows the new release's message literally", msg)
        report.check(page.no_alert(), "still no alert")

    def finished_log(self):
        report, page, d2 = self.report, self.page, self.d2
        report.step("the log of a finished deployment")
        page.go(f"#/deployments/{d2}")
        page.wait(lambda: f"deployment {d2} succeeded" in (page.q('[data-testid="log"]') or ""), "the whole log")
        text = page.q('[data-testid="log"]')
        for needle in ("--> build: ./build.sh", "step one", "step two", "--> activate: echo activated", "activated",
                       f"deployment {d2} succeeded"):
            report.check(needle in text, f"the log holds {needle!r}")
        folded = list(zip(page.qa('[data-testid="log-step"]', "@data-phase"), page.qa('[data-testid="log-step"]', "@data-status")))
        report.check(folded == [("build", "succeeded"), ("test", "succeeded"), ("activate", "succeeded")],
                     "the log is folded into its 3 succeeded steps", str(folded))
        report.check(not any(page.qa('[data-testid="log-step"]', "open")), "succeeded steps start folded")
        page.click(page.one('[data-testid="expand-all"]'))
        page.wait(lambda: "activated" in (page.q('[data-testid="log"]', "innerText") or "").split("echo activated", 1)[-1],
                  "'activated' to be visible once expanded")
        report.ok("expanding the steps shows their output")
        phases = page.qa('[data-testid="step"]', "@data-phase")
        report.check(phases == ["build", "test", "activate"], "the step timeline lists build, test, activate", str(phases))
        page.screenshots(self.args.screenshots, "log-finished")

    def deploy_from_page(self):
        report, page, tmp = self.report, self.page, self.tmp
        report.step("a deploy from the page, and its live log")
        page.go("#/apps/demo")
        page.click(page.one('[data-testid="deploy-button"]'))
        page.one('dialog[open] [data-testid="deploy-ref"]', "the ref input of the deploy dialog")
        ref = page.q('dialog[open] [data-testid="deploy-ref"]', "value")
        report.check(ref == "main", "the ref defaults to the app's branch", ref)
        label = self.driver.execute_script("return document.querySelector('label[for=deploy-ref]')?.textContent")
        report.check(bool(label), "the ref input has a label")
        page.click(page.dialog_button())
        page.wait(lambda: not page.css("dialog[open]"), "the deploy dialog to close")
        d3 = self.d3 = page.wait(lambda: newest_row(page, self.d2), "the new deployment's row")
        report.ok(f"the page queued deployment {d3}")
        page.click(page.one('[data-testid="deployment-link"]', root=page.row(d3)))
        page.wait(lambda: page.hash() == f"#/deployments/{d3}", "the deployment's page")
        saw_live = page.wait(lambda: ("step one" in (page.q('[data-testid="log"]') or "")) and
                             page.q('[data-testid="deployment-status"]', "@data-status"), "'step one' in the live log")
        report.ok(f"the log streamed 'step one' while the deployment was {saw_live}")
        page.wait(lambda: "step two" in (page.q('[data-testid="log"]') or ""), "'step two' to stream in")
        page.wait(lambda: page.q('[data-testid="deployment-status"]', "@data-status") == "succeeded",
                  "the deployment's badge to turn succeeded at the stream's end")
        report.ok("the live log reached the end and the badge turned succeeded")
        daemon_view = self.daemon.wait_finished(d3, DEPLOY_TIMEOUT)
        report.check(daemon_view["status"] == "succeeded" and daemon_view["trigger"] == "manual", f"deployment {d3} was a manual deploy that succeeded")
        report.check(os.readlink(tmp / "deploy" / "current") == f"releases/{d3}", f"current -> releases/{d3}", os.readlink(tmp / "deploy" / "current"))

    def rollback_from_page(self):
        report, page, d1 = self.report, self.page, self.d1
        report.step("a rollback from the page")
        page.go("#/apps/demo")
        page.click(page.one('[data-testid="rollback-button"]'))
        target = page.one('dialog[open] [data-testid="rollback-target"][data-ready="true"]', "the kept releases in the rollback dialog")
        Select(target).select_by_value(str(d1))
        page.click(page.dialog_button())
        page.wait(lambda: not page.css("dialog[open]"), "the rollback dialog to close")
        current = self.tmp / "deploy" / "current"
        page.wait(lambda: os.readlink(current) == f"releases/{d1}", f"current to point at releases/{d1}", timeout=DEPLOY_TIMEOUT)
        report.ok(f"current -> releases/{d1} on disk")
        page.wait(lambda: page.q('[data-testid="release-sha"]') == self.sha1[:7], "the app page to show the first release live again")
        report.ok("the app page shows the first release live again")
        rid = self.rid = page.wait(lambda: newest_row(page, self.d3), "the rollback's row")
        page.wait(lambda: page.row_status(rid) == "succeeded", "the rollback's row to turn succeeded")
        report.ok(f"rollback {rid} shows as succeeded in the history")

    def take_screenshots(self):
        page, folder = self.page, self.args.screenshots
        page.screenshots(folder, "history")
        page.go("#/")
        page.wait(lambda: page.q(f'{self.CARD} [data-testid="release-sha"]') == self.sha1[:7], "the card to show the first release")
        page.screenshots(folder, "apps")
        page.go(f"#/deployments/{self.d3}")
        page.wait(lambda: "step two" in (page.q('[data-testid="log"]') or ""), "the log of the page's deployment")
        page.click(page.one('[data-testid="expand-all"]'))
        page.screenshots(folder, "log")
        self.report.ok(f"screenshots saved in {folder}")

    def deploy_new_app(self, name, template, status):
        """Adds pipelines/NAME.yml (`template` on the test's repository), deploys it through the API and checks that
        the deployment ends `status`; returns the deployment."""
        report, tmp = self.report, self.tmp
        (tmp / "pipelines" / f"{name}.yml").write_text(template.format(bare=tmp / "app.git", deploy_to=tmp / f"deploy-{name}"))
        self.daemon.wait_apps(["demo", name])
        answer, body = self.daemon.request("POST", f"/api/v1/apps/{name}/deploy", {})
        report.check(answer == 202, f"the {name} app's deploy is queued", json.dumps(body))
        done = self.daemon.wait_finished(body["id"], DEPLOY_TIMEOUT)
        report.check(done["status"] == status, f"deployment {done['id']} of {name} ended {status}", json.dumps(done))
        return done

    def failure_shows_its_cause(self):
        """A deploy whose activate step passes but leaves its server in the step's group (which Slipway ends), so
        that the health check fails: the page shows the warning that explains it beside the error, unclicked."""
        report, page, tmp = self.report, self.page, self.tmp
        report.step("a failed deploy shows its cause without a click")
        failed = self.deploy_new_app("broken", BROKEN, "failed")
        page.go(f"#/deployments/{failed['id']}")
        cause = page.one('[data-testid="deployment-cause"]', "the warning beside the error")
        text = cause.text
        report.check("left processes running" in text and "activate: start the server" in text,
                     "the cause names the step and what it left behind", text)
        shots = page.screenshots(self.args.screenshots, "failed-deploy")
        for width in (1280, 375):
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": 900 if width > 600 else 812, "deviceScaleFactor": 1, "mobile": width < 600})
            visible = self.driver.execute_script(
                "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight && r.width > 0",
                page.one('[data-testid="deployment-cause"]'))
            report.check(visible, f"at {width} px the cause is on the first screen, without scrolling or a click")
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        kind = self.driver.execute_script(
            "return [...document.querySelectorAll('.facts div')].find(d => d.querySelector('dt').textContent === 'Kind')"
            "?.querySelector('dd').textContent")
        report.check(kind == "deploy, by hand", "the kind and trigger read as words", str(kind))
        warned = page.qa('[data-testid="log-step"][data-warned]', "@data-phase")
        report.check(warned == ["activate"], "the activate step is marked and left open in the log", str(warned))
        report.ok("screenshots of the failed deploy: " + ", ".join(p.name for p in shots))
        # The later steps restart the daemon on these pipelines: the broken app has done its part.
        (tmp / "pipelines" / "broken.yml").unlink()

    def processes_panel(self):
        """An app with processes: its page lists each instance with its pid and status, and shows its output."""
        report, page, tmp = self.report, self.page, self.tmp
        report.step("the processes Slipway runs, on the app's page")
        done = self.deploy_new_app("worker", WORKER, "succeeded")
        _, listing = self.daemon.request("GET", "/api/v1/apps/worker/processes")
        pids = [p["pid"] for p in listing.get("processes", []) if p.get("pid")]
        # They outlive the daemon by design (and it would start them again if they were ended now): tear_down ends
        # them once the daemon has stopped.
        self.state["process_states"] = [tmp / "state" / "processes"]
        report.check(len(pids) == 1, "the API lists one running instance", json.dumps(listing))
        page.go("#/apps/worker")
        row = '[data-testid="process-row"][data-process="worker.1"]'
        page.one(row, "the worker's row in the processes panel")
        shown = page.wait(lambda: page.q(f"{row} .badge", "@data-status") == "running" and page.qa(f"{row} td"),
                          "the worker's row to say running")
        report.check(str(pids[0]) in shown, "the row names the instance's pid", str(shown))
        release = str(done["id"])
        page.wait(lambda: f"release {release} is up" in (page.q('[data-testid="process-log"]') or ""),
                  "the worker's output in the panel")
        report.ok("the panel shows the worker's own output")
        # The later steps restart the daemon on these pipelines; without its file, the worker is not taken up again.
        (tmp / "pipelines" / "worker.yml").unlink()

    def console_so_far(self):
        self.report.step("the browser console, so far")
        problems = console_problems(self.driver, restarted=False)
        self.report.check(not problems, "no script errors, failed requests or blocked resources in the console", "\n".join(problems))

    def private_daemon(self):
        report, page, driver, daemon = self.report, self.page, self.driver, self.daemon
        report.step("a --private daemon asks for the token")
        daemon.stop()
        daemon.start("--token", TOKEN, "--private")
        daemon.token = TOKEN
        driver.get("about:blank")
        driver.get(daemon.url + "/#/")
        token_input = page.one('dialog[open] [data-testid="token-input"]', "the token prompt")
        report.ok("the page asks for the token when the API answers 401")
        token_input.send_keys(TOKEN)
        page.click(page.dialog_button("token-save"))
        page.card("demo")
        report.ok("with the token the app list loads")
        stored = driver.execute_script("return [sessionStorage.getItem('slipway.token'), localStorage.length]")
        report.check(stored[0] == TOKEN and stored[1] == 0, "the token is kept in sessionStorage only", str(stored))
        page.wait(lambda: page.q('[data-testid="live-indicator"]', "@data-state") == "live", "the event stream to open with the token")
        report.ok("the event stream works with the token")
        page.click(page.one(f'{self.CARD} a.card-link'))
        page.click(page.one('[data-testid="deploy-button"]'))
        page.click(page.dialog_button())
        page.wait(lambda: not page.css("dialog[open]"), "the deploy dialog to close")
        d5 = page.wait(lambda: newest_row(page, int(self.rid)), "the new deployment's row")
        page.wait(lambda: page.row_status(d5) == "succeeded", f"deployment {d5} to succeed", timeout=DEPLOY_TIMEOUT)
        report.ok(f"a deploy with the token went through (deployment {d5})")

    def errors_in_words(self):
        report, page, driver = self.report, self.page, self.driver
        report.step("errors are shown in words")
        driver.execute_script("sessionStorage.setItem('slipway.token', 'wrong')")
        driver.get("about:blank")
        driver.get(self.daemon.url + "/#/apps/demo")
        page.one('dialog[open] [data-testid="token-input"]', "the token prompt for a wrong token")
        page.click(page.one('dialog[open] button.cancel'))
        errors = page.wait(lambda: page.q('[data-testid="errors"]'), "an error in the aria-live region")
        report.check("token" in errors.lower(), "the error region says what is wrong, in words", errors)
        live = page.q('[data-testid="errors"]', "@aria-live") or page.q('[data-testid="errors"]', "@role")
        report.check(live in ("assertive", "polite", "alert"), "the error region is an aria-live region")

    def console_after_restart(self):
        self.report.step("the browser console, after the restart")
        problems = console_problems(self.driver, restarted=True)
        self.report.check(not problems, "no script errors or blocked resources in the console", "\n".join(problems))


def run(args, report, tmp, state):
    test = DashboardTest(args, report, tmp, state)
    for step in test.steps():
        step()


def console_problems(driver, restarted):
    """SEVERE entries of the browser console since the last look. Once the daemon was restarted, the streams' failed
    reconnects (net::ERR_...) and the 401 answers before the token was given are expected."""
    problems = []
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        if entry.get("level") != "SEVERE":
            continue
        if restarted and ("status of 401" in message or "net::ERR_" in message):
            continue
        problems.append(message)
    return problems


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slipway", default=str(ROOT / ".build" / "debug" / "slipway"), help="the slipway binary (default: .build/debug/slipway)")
    parser.add_argument("--screenshots", default=str(HERE / "screenshots"), help="where to save the PNGs (default: Tests/Browser/screenshots)")
    parser.add_argument("--port", type=int, default=0, help="the daemon's port (default: a free one)")
    parser.add_argument("--extra-apps", type=int, default=0, help="also define N more apps, to time the app list with many")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder, for a look after a failure")
    args = parser.parse_args()
    args.slipway = Path(args.slipway).resolve()
    args.screenshots = Path(args.screenshots).resolve()
    return args


def run_checked(args, report, tmp, state):
    """Runs the test; the exit status: 0 when every check passed, 1 when one failed (said on stderr)."""
    try:
        run(args, report, tmp, state)
        return 0
    except (Failure, HarnessError) as e:
        print(f"not ok - {report.current}: {e}", file=sys.stderr)
    except WebDriverException as e:
        print(f"not ok - {report.current}: the browser failed: {e.msg or e}", file=sys.stderr)
    except Exception:  # noqa: BLE001 - any other error is a failure with its traceback
        print(f"not ok - {report.current}: unexpected error", file=sys.stderr)
        traceback.print_exc()
    return 1


def end_processes(state):
    """Ends the processes the daemons ran for the test's apps, by the state files they keep
    (`<state>/processes/<app>.json`): each instance and forwarder is in a process group of its own."""
    for folder in state.pop("process_states", []):
        for path in Path(folder).glob("*.json"):
            record = json.loads(path.read_text())
            entries = [i for g in record.get("generations", []) for i in g.get("instances", [])]
            for entry in entries + record.get("forwarders", []):
                pid = (entry.get("identity") or {}).get("pid")
                if pid:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


def tear_down(args, state, code):
    """Quits the browser, stops the daemon and the processes it ran; after a failure, saves the page and shows the
    daemon's log."""
    driver = state.get("driver")
    if driver is not None:
        if code:
            try:
                path = args.screenshots / "failure.png"
                driver.save_screenshot(str(path))
                print(f"dashboard_test: the page at the failure: {path} ({driver.current_url})", file=sys.stderr)
            except WebDriverException:
                pass
        try:
            driver.quit()
        except WebDriverException:
            pass
    daemon = state.get("daemon")
    if daemon is not None:
        if code:
            print(daemon.log_tail(), file=sys.stderr)
        daemon.stop()
    end_processes(state)


def main():
    args = parse_args()
    if not os.access(args.slipway, os.X_OK):
        print(f"dashboard_test: no slipway binary at {args.slipway}: build it (swift build) or pass --slipway PATH", file=sys.stderr)
        return 2
    for tool in ("git",):
        if not shutil.which(tool):
            print(f"dashboard_test: {tool} is needed", file=sys.stderr)
            return 2
    args.screenshots.mkdir(parents=True, exist_ok=True)
    (args.screenshots / "failure.png").unlink(missing_ok=True)

    report = Report()
    state = {}
    scratch = Scratch("browser", parent=None)
    started = time.monotonic()
    code = 1
    try:
        code = run_checked(args, report, Path(scratch.root), state)
    finally:
        tear_down(args, state, code)
        scratch.finish(args.keep, f"dashboard_test: kept {scratch.root}", print)
    if code:
        report.failed = max(report.failed, 1)
    print(f"dashboard_test: took {time.monotonic() - started:.1f}s")
    print(f"dashboard: {report.passed} passed, {report.failed} failed")
    return code


if __name__ == "__main__":
    sys.exit(main())
