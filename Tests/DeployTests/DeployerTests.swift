import Foundation
import GitKit
import Pipeline
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

@Suite struct DeployerTests {
    /// The health check's timeout is what a healthy release's check may take on a loaded machine (CI once took 5 s
    /// to start `sh` for it); an unhealthy one waits it out.
    static let recording = """
        build:
          - echo "build $SLIPWAY_DEPLOYMENT" >> "$SLIPWAY_SHARED_DIR/builds"
        test:
          - name: unit
            run: test -f app.txt
        activate:
          - echo "$SLIPWAY_DEPLOYMENT $(cat app.txt)" >> "$SLIPWAY_SHARED_DIR/activations"
        rollback:
          - echo "rollback to $(cat app.txt)" >> "$SLIPWAY_SHARED_DIR/rollbacks"
        health:
          command: test -f healthy
          timeout: 20s
          interval: 100ms

        """

    @Test func aSuccessfulDeployGoesLive() async throws {
        let fixture = try await DeployFixture(yaml: Self.recording + "env:\n  GREETING: hi\n")
        let first = try fixture.push("first", files: ["app.txt": "v1", "healthy": ""])
        let deployment = try await fixture.deploy(first)
        #expect(deployment.status == .succeeded, "\(deployment.error ?? "")")
        #expect(deployment.phase == .done)
        #expect(deployment.message == "first" && deployment.author == "Ada Lovelace")
        #expect(deployment.durationMs != nil && deployment.finishedAt != nil)
        let id = deployment.id
        #expect(fixture.layout.currentRelease() == id)
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: fixture.layout.currentLink) == "releases/\(id)")
        #expect(try String(contentsOfFile: fixture.layout.currentLink + "/app.txt", encoding: .utf8) == "v1")
        #expect(fixture.shared("activations") == ["\(id) v1"])
        let release = try #require(try await fixture.store.release(id))
        #expect(release.succeeded && release.commit == first && release.isKept)
        #expect(try await fixture.store.appState("hello").liveRelease == id)
        let steps = try await fixture.steps(deployment)
        #expect(steps.map(\.phase) == [.build, .test, .activate, .health])
        #expect(steps.allSatisfy { $0.status == .succeeded && $0.durationMs != nil && $0.processGroup == nil })
        let log = try fixture.log(deployment)
        #expect(log.contains("--> build: echo"))
        #expect(log.contains("==> switch: current -> releases/\(id)"))
        #expect(log.contains("==> deployment \(id) succeeded"))
    }

    @Test func stepsSeeTheirEnvironment() async throws {
        let fixture = try await DeployFixture(
            yaml:
                "env:\n  GREETING: hi\nbuild:\n  - env | grep -E '^(SLIPWAY_|GREETING)' | sort > \"$SLIPWAY_SHARED_DIR/env-$SLIPWAY_DEPLOYMENT\"\n"
        )
        let first = try fixture.push("first", files: ["a": "1"])
        let one = try await fixture.deploy(first)
        let second = try fixture.push("second", files: ["a": "2"])
        let two = try await fixture.deploy(second)
        let env = Dictionary(
            uniqueKeysWithValues: fixture.shared("env-\(two.id)").map { line in
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                return (parts[0], parts.count > 1 ? parts[1] : "")
            })
        #expect(env["GREETING"] == "hi")
        #expect(env["SLIPWAY_APP"] == "hello")
        #expect(env["SLIPWAY_DEPLOYMENT"] == String(two.id))
        #expect(env["SLIPWAY_COMMIT"] == second)
        #expect(env["SLIPWAY_BRANCH"] == "main")
        #expect(env["SLIPWAY_RELEASE_DIR"] == fixture.layout.releaseDirectory(two.id))
        #expect(env["SLIPWAY_SHARED_DIR"] == fixture.layout.sharedDirectory)
        #expect(env["SLIPWAY_DEPLOY_TO"] == fixture.layout.deployTo)
        #expect(env["SLIPWAY_PREVIOUS_COMMIT"] == first)
        #expect(env["SLIPWAY_PHASE"] == "build")
        #expect(env["SLIPWAY_NODE"] == fixture.context.node && !fixture.context.node.isEmpty)
        #expect(fixture.shared("env-\(one.id)").contains("SLIPWAY_PREVIOUS_COMMIT="))
    }

    @Test func aFailingTestLeavesCurrentUntouchedAndRemovesTheRelease() async throws {
        let fixture = try await DeployFixture(yaml: Self.recording)
        let good = try await fixture.deploy(try fixture.push("good", files: ["app.txt": "v1", "healthy": ""]))
        try FileManager.default.removeItem(atPath: fixture.work.path + "/app.txt")
        let bad = try await fixture.deploy(try fixture.push("no app.txt", files: [:]))
        #expect(bad.status == .failed)
        #expect(bad.phase == .test)
        #expect(bad.error == "test step 'unit' failed (exit 1)")
        #expect(fixture.layout.currentRelease() == good.id)
        #expect(!fixture.layout.hasRelease(bad.id))
        #expect(try await fixture.store.release(bad.id) == nil, "it never went live")
        #expect(fixture.shared("activations").count == 1)
        #expect(try fixture.log(bad).contains("removed releases/\(bad.id); current is unchanged"))
        let steps = try await fixture.steps(bad)
        #expect(steps.map(\.status) == [.succeeded, .failed, .skipped, .skipped])
        #expect(steps[1].exitCode == 1)
    }

    @Test func aHangingStepIsKilledAtItsTimeoutWithItsBackgroundChild() async throws {
        let fixture = try await DeployFixture(
            yaml: """
                build:
                  - name: hang
                    run: echo $$ > "$SLIPWAY_SHARED_DIR/pgid"; sleep 300 & sleep 300
                    timeout: 300ms
                """)
        let deployment = try await fixture.deploy(try fixture.push("hang", files: ["a": "1"]))
        #expect(deployment.status == .failed)
        #expect(deployment.error == "build step 'hang' timed out after 300ms")
        let step = try #require(try await fixture.steps(deployment).first)
        #expect(step.status == .timedOut)
        let group = try #require(fixture.shared("pgid").first.flatMap { Int32($0) })
        #expect(ProcessGroup(group).livingMembers.isEmpty)
        #expect(fixture.layout.currentRelease() == nil)
        #expect(fixture.layout.releasesOnDisk().isEmpty)
    }

    /// A child that leaves the step's process group (here by calling `setpgid`) is still ended
    /// when the step finishes; one that starts its own session (`setsid`) is a service and stays.
    @Test func aChildThatLeavesTheGroupIsEndedButASessionOfItsOwnStays() async throws {
        let fixture = try await DeployFixture(
            yaml: """
                build:
                  - perl -e 'setpgrp(0, 0); sleep 300' & echo $! > "$SLIPWAY_SHARED_DIR/escaped"
                  - setsid sleep 301 > /dev/null 2>&1 & echo $! > "$SLIPWAY_SHARED_DIR/service"
                """)
        let deployment = try await fixture.deploy(try fixture.push("escape", files: ["a": "1"]))
        #expect(deployment.status == .succeeded)
        let escaped = try #require(fixture.shared("escaped").first.flatMap { pid_t($0) })
        let service = try #require(fixture.shared("service").first.flatMap { pid_t($0) })
        defer { kill(service, SIGKILL) }
        #expect(!Self.isRunning(escaped), "the escaped child was ended")
        #expect(Self.isRunning(service), "the service in its own session runs on")
        let log = try fixture.log(deployment)
        #expect(log.contains("left processes running outside its group"), "\(log)")
    }

    /// Alive and not a zombie waiting for whoever adopted it to reap it.
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    @Test func secretsAreMaskedInTheLog() async throws {
        let fixture = try await DeployFixture(
            yaml: """
                env:
                  API_TOKEN: ${TEST_API_TOKEN}
                build:
                  - echo "token is $API_TOKEN"
                  - echo "again $API_TOKEN" >&2
                """, environment: ["TEST_API_TOKEN": "tok-9f8e7d6c"])
        let deployment = try await fixture.deploy(try fixture.push("secret", files: ["a": "1"]))
        #expect(deployment.status == .succeeded)
        let log = try fixture.log(deployment)
        #expect(log.contains("token is ***"))
        #expect(log.contains("again ***"))
        #expect(!log.contains("tok-9f8e7d6c"))
    }

    @Test func dataFromOutsideReachesStepsOnlyAsData() async throws {
        let marker = ScratchDirectory("slipway-pwned")
        let branch = "evil$(touch${IFS}\(marker.path)/branch)"
        let fixture = try await DeployFixture(
            yaml: "build:\n  - printf '%s\\n' \"$SLIPWAY_BRANCH\" > \"$SLIPWAY_SHARED_DIR/branch\"\n", branch: branch)
        let sha = try fixture.push("$(touch \(marker.path)/message) `touch \(marker.path)/backtick`", files: ["a": "1"])
        let deployment = try await fixture.deploy(sha)
        #expect(deployment.status == .succeeded, "\(deployment.error ?? "")")
        #expect(fixture.shared("branch") == [branch])
        #expect(deployment.message.hasPrefix("$(touch"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: marker.path).isEmpty)
    }

    @Test func anHTTPHealthCheckRetriesUntilTheAppAnswers2xx() async throws {
        let app = try StatusServer(statuses: [503, 503, 204])
        let fixture = try await DeployFixture(
            yaml: "health:\n  http: \(app.url())\n  timeout: 10s\n  interval: 100ms\n")
        let deployment = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        #expect(deployment.status == .succeeded, "\(deployment.error ?? "")")
        #expect(app.requests == 3)
        let log = try fixture.log(deployment)
        #expect(log.contains("health: try 1: \(app.url()) answered 503"))
        #expect(log.contains("health: try 2: \(app.url()) answered 503"))
        #expect(log.contains("health: passed on try 3"))
        #expect(try await fixture.steps(deployment).last?.name == "GET \(app.url())")
    }

    @Test func anHTTPHealthCheckNobodyAnswersFailsWithTheReason() async throws {
        // Port 9 (discard) has no listener on loopback: every try is refused.
        let fixture = try await DeployFixture(
            yaml: "health:\n  http: http://127.0.0.1:9/up\n  timeout: 3s\n  interval: 200ms\n")
        let deployment = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        #expect(deployment.status == .failed)
        #expect(deployment.error == "the health check failed after 3s")
        let log = try fixture.log(deployment)
        #expect(log.contains("health: try 1: http://127.0.0.1:9/up: connection refused"))
        // A refused connection fails its try at once and is tried again at the interval, not once for the whole
        // timeout.
        #expect(log.contains("health: try 3: http://127.0.0.1:9/up: connection refused"))
        #expect(log.contains("health: gave up after"))
    }

    @Test func aFailingHealthCheckRollsBackByItself() async throws {
        let fixture = try await DeployFixture(yaml: Self.recording)
        let good = try await fixture.deploy(try fixture.push("good", files: ["app.txt": "v1", "healthy": ""]))
        try FileManager.default.removeItem(atPath: fixture.work.path + "/healthy")
        let bad = try await fixture.deploy(try fixture.push("unhealthy", files: ["app.txt": "v2"]))
        #expect(bad.status == .failed)
        #expect(bad.error == "the health check failed after 20s")
        #expect(bad.rolledBackTo == good.id)
        #expect(fixture.layout.currentRelease() == good.id)
        #expect(!fixture.layout.hasRelease(bad.id))
        // Activate ran for the good release, the bad one, and the good one again.
        #expect(fixture.shared("activations").map { $0.split(separator: " ")[1] } == ["v1", "v2", "v1"])
        let history = try await fixture.store.deployments(app: "hello")
        let automatic = try #require(history.first)
        #expect(automatic.trigger == .autoRollback && automatic.kind == .rollback)
        #expect(automatic.status == .succeeded && automatic.targetRelease == good.id)
        // Its steps are recorded like any deployment's: activate, then the health check.
        let automaticSteps = try await fixture.steps(automatic)
        #expect(automaticSteps.last?.phase == .health && automaticSteps.dropLast().allSatisfy { $0.phase == .activate })
        #expect(automaticSteps.allSatisfy { $0.status == .succeeded })
        #expect(try await fixture.store.release(bad.id)?.isKept == false)
        #expect(try await fixture.store.appState("hello").liveRelease == good.id)
    }

    /// The automatic rollback's own failure is the deployment's too: `rolled_back_to` says only a rollback that
    /// worked.
    @Test func rolledBackToIsSetOnlyWhenTheAutomaticRollbackSucceeded() async throws {
        let fixture = try await DeployFixture(yaml: Self.recording)
        let good = try await fixture.deploy(try fixture.push("good", files: ["app.txt": "v1", "healthy": ""]))
        // The good release is no longer healthy either, so that going back to it fails its check too.
        try FileManager.default.removeItem(atPath: fixture.layout.releaseDirectory(good.id) + "/healthy")
        try FileManager.default.removeItem(atPath: fixture.work.path + "/healthy")
        let bad = try await fixture.deploy(try fixture.push("unhealthy", files: ["app.txt": "v2"]))
        let automatic = try #require(try await fixture.store.deployments(app: "hello").first)
        #expect(automatic.trigger == .autoRollback && automatic.status == .failed)
        #expect(bad.status == .failed)
        #expect(bad.rolledBackTo == nil)
        #expect(
            bad.error
                == "the health check failed after 20s; the automatic rollback to release \(good.id) "
                + "(deployment \(automatic.id)) failed")
        #expect(fixture.layout.currentRelease() == good.id, "the switch back itself happened")
    }

    /// A cancel reaches the automatic rollback that a failed deployment started: its hanging step is stopped.
    @Test func aCancelReachesTheAutomaticRollback() async throws {
        let fixture = try await DeployFixture(
            yaml: """
                activate:
                  - if [ -f "$SLIPWAY_SHARED_DIR/hang" ] && [ "$(cat app.txt)" = v1 ]; then sleep 300; fi
                health:
                  command: test -f healthy
                  timeout: 20s
                  interval: 100ms
                """)
        let good = try await fixture.deploy(try fixture.push("good", files: ["app.txt": "v1", "healthy": ""]))
        try writeFile(fixture.layout.sharedDirectory + "/hang", "")
        try FileManager.default.removeItem(atPath: fixture.work.path + "/healthy")
        let control = RunCancellation()
        let store = fixture.store
        let canceller = Task {
            // Cancel once the rollback's own activate step runs (not a step of the failed deployment that is
            // still marked running when the rollback is queued).
            while true {
                let running = try await store.runningSteps()
                let newest = try await store.deployments(app: "hello").first
                if let newest, newest.trigger == .autoRollback,
                    running.contains(where: { $0.deploymentId == newest.id })
                {
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            control.cancel()
        }
        let bad = try await fixture.deploy(try fixture.push("unhealthy", files: ["app.txt": "v2"]), control: control)
        canceller.cancel()
        let automatic = try #require(try await fixture.store.deployments(app: "hello").first)
        #expect(automatic.trigger == .autoRollback)
        #expect(automatic.status == .cancelled)
        #expect(try await fixture.steps(automatic).first?.status == .cancelled)
        #expect(bad.status == .failed && bad.rolledBackTo == nil)
        #expect(
            bad.error?.hasSuffix("the automatic rollback to release \(good.id) (deployment \(automatic.id)) cancelled")
                == true)
    }

    /// A deployment cancelled in activate must not stay live: its automatic rollback still runs to the end.
    @Test func aDeploymentCancelledInActivateIsStillRolledBack() async throws {
        let fixture = try await DeployFixture(
            yaml: "activate:\n  - if [ \"$(cat app.txt)\" = v2 ]; then sleep 300; fi\n")
        let good = try await fixture.deploy(try fixture.push("good", files: ["app.txt": "v1"]))
        let control = RunCancellation()
        let store = fixture.store
        let canceller = Task {
            while try await store.runningSteps().isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            control.cancel()
        }
        let cancelled = try await fixture.deploy(try fixture.push("slow", files: ["app.txt": "v2"]), control: control)
        canceller.cancel()
        #expect(cancelled.status == .cancelled)
        #expect(cancelled.rolledBackTo == good.id)
        #expect(fixture.layout.currentRelease() == good.id)
        let automatic = try #require(try await fixture.store.deployments(app: "hello").first)
        #expect(automatic.trigger == .autoRollback && automatic.status == .succeeded)
    }

    @Test func aFailingActivateRollsBackToThePreviousRelease() async throws {
        let fixture = try await DeployFixture(yaml: "activate:\n  - if [ -f broken ]; then exit 5; fi\n")
        let good = try await fixture.deploy(try fixture.push("good", files: ["a": "1"]))
        let bad = try await fixture.deploy(try fixture.push("bad", files: ["broken": ""]))
        #expect(bad.status == .failed && bad.rolledBackTo == good.id)
        #expect(bad.error == "activate step 'if [ -f broken ]; then exit 5; fi' failed (exit 5)")
        #expect(fixture.layout.currentRelease() == good.id)
        #expect(try await fixture.store.deployments(app: "hello").first?.status == .succeeded)
    }

    @Test func aFailingActivateWithNothingEarlierLeavesCurrentWhereItIs() async throws {
        let fixture = try await DeployFixture(yaml: "activate:\n  - exit 7\n")
        let deployment = try await fixture.deploy(try fixture.push("first", files: ["a": "1"]))
        #expect(deployment.status == .failed)
        #expect(deployment.rolledBackTo == nil)
        #expect(deployment.error == "activate step 'exit 7' failed (exit 7)")
        #expect(fixture.layout.currentRelease() == deployment.id)
        #expect(fixture.layout.hasRelease(deployment.id), "the live release stays on disk")
    }

    @Test func rollingBackToAKeptReleaseDoesNotBuild() async throws {
        let fixture = try await DeployFixture(yaml: Self.recording)
        let first = try await fixture.deploy(try fixture.push("one", files: ["app.txt": "v1", "healthy": ""]))
        let second = try await fixture.deploy(try fixture.push("two", files: ["app.txt": "v2"]))
        #expect(fixture.shared("builds").count == 2)

        let rollback = try await fixture.rollback()
        #expect(rollback.status == .succeeded, "\(rollback.error ?? "")")
        #expect(rollback.kind == .rollback && rollback.targetRelease == first.id)
        #expect(fixture.layout.currentRelease() == first.id)
        #expect(fixture.shared("builds").count == 2, "nothing was built")
        #expect(fixture.shared("rollbacks") == ["rollback to v1"])
        #expect(fixture.shared("activations").last == "\(rollback.id) v1")
        #expect(fixture.layout.hasRelease(second.id), "the release rolled back from is kept")
        let steps = try await fixture.steps(rollback)
        #expect(steps.map(\.phase) == [.rollback, .activate, .health])

        // Forward again, to the newer kept release, by id.
        let forward = try await fixture.rollback(to: .release(second.id))
        #expect(forward.status == .succeeded)
        #expect(fixture.layout.currentRelease() == second.id)
        #expect(fixture.shared("builds").count == 2)
    }

    @Test func rollingBackToAPrunedReleaseRebuildsIt() async throws {
        let fixture = try await DeployFixture(yaml: Self.recording + "keep_releases: 1\n")
        let firstSha = try fixture.push("one", files: ["app.txt": "v1", "healthy": ""])
        let first = try await fixture.deploy(firstSha)
        let second = try await fixture.deploy(try fixture.push("two", files: ["app.txt": "v2"]))
        #expect(!fixture.layout.hasRelease(first.id), "keep_releases: 1 pruned the first")
        #expect(fixture.layout.releasesOnDisk() == [second.id])

        let rollback = try await fixture.rollback(to: .commit(String(firstSha.prefix(7))))
        #expect(rollback.status == .succeeded, "\(rollback.error ?? "")")
        #expect(rollback.targetRelease == nil)
        #expect(rollback.commit == firstSha)
        #expect(fixture.shared("builds").count == 3, "a pruned release is built again")
        #expect(fixture.layout.currentRelease() == rollback.id)
        #expect(try String(contentsOfFile: fixture.layout.currentLink + "/app.txt", encoding: .utf8) == "v1")
    }

    @Test func retentionNeverRemovesTheLiveReleaseEvenRightAfterARollback() async throws {
        let fixture = try await DeployFixture(yaml: Self.recording + "keep_releases: 2\n")
        var ids: [Int64] = []
        for version in 1...3 {
            let deployment = try await fixture.deploy(
                try fixture.push("v\(version)", files: ["app.txt": "v\(version)", "healthy": ""]))
            ids.append(deployment.id)
        }
        #expect(fixture.layout.releasesOnDisk() == [ids[1], ids[2]])
        let rollback = try await fixture.rollback()
        #expect(rollback.status == .succeeded)
        #expect(fixture.layout.currentRelease() == ids[1])
        #expect(fixture.layout.releasesOnDisk() == [ids[1], ids[2]])

        // A new deploy keeps the two newest succeeded releases; the one live before it is not special any more.
        let next = try await fixture.deploy(try fixture.push("v4", files: ["app.txt": "v4"]))
        #expect(fixture.layout.releasesOnDisk() == [ids[2], next.id])

        // With keep_releases at its minimum, the live release still stays after rolling back to an old one.
        fixture.pipeline.keepReleases = 1
        let back = try await fixture.rollback(to: .release(ids[2]))
        #expect(back.status == .succeeded)
        #expect(fixture.layout.currentRelease() == ids[2])
        #expect(fixture.layout.hasRelease(ids[2]))
        let kept = try await fixture.store.releases(app: "hello").map(\.id)
        #expect(kept.contains(ids[2]))
    }

    @Test func aRollbackWithNothingToGoBackToIsAClearError() async throws {
        let fixture = try await DeployFixture(yaml: Self.recording)
        let planner = fixture.planner
        await #expect(throws: DeployError.conflict("hello has no live release to roll back from")) {
            try await planner.plan(app: fixture.pipeline, target: nil)
        }
        let only = try await fixture.deploy(try fixture.push("one", files: ["app.txt": "v1", "healthy": ""]))
        await #expect(
            throws: DeployError.conflict("hello has no succeeded release older than the live one (\(only.id))")
        ) {
            try await planner.plan(app: fixture.pipeline, target: nil)
        }
        await #expect(throws: DeployError.conflict("release \(only.id) is already live")) {
            try await planner.plan(app: fixture.pipeline, target: .release(only.id))
        }
        await #expect(throws: DeployError.notFound("hello has no release 999")) {
            try await planner.plan(app: fixture.pipeline, target: .release(999))
        }
        await #expect(throws: DeployError.self) {
            try await planner.plan(app: fixture.pipeline, target: .commit("xyz"))
        }
        await #expect(throws: DeployError.notFound("no commit 1234567 in hello's repository")) {
            try await planner.plan(app: fixture.pipeline, target: .commit("1234567"))
        }
    }

    @Test func cancellingARunningDeploymentStopsItAndLeavesCurrentAlone() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - sleep 300\n")
        let control = RunCancellation()
        let store = fixture.store
        Task {
            // Cancel once the step is running, however long the machine takes to get there.
            while try await store.runningSteps().isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            control.cancel()
        }
        let deployment = try await fixture.deploy(try fixture.push("slow", files: ["a": "1"]), control: control)
        #expect(deployment.status == .cancelled)
        #expect(fixture.layout.currentRelease() == nil)
        #expect(fixture.layout.releasesOnDisk().isEmpty)
        #expect(try await fixture.steps(deployment).first?.status == .cancelled)
    }

    @Test func sharedIsKeptAcrossReleases() async throws {
        let fixture = try await DeployFixture(
            yaml: "build:\n  - echo $SLIPWAY_DEPLOYMENT >> \"$SLIPWAY_SHARED_DIR/uploads.txt\"\n")
        _ = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        _ = try await fixture.deploy(try fixture.push("two", files: ["a": "2"]))
        #expect(fixture.shared("uploads.txt").count == 2)
    }
}
