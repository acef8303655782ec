import Foundation
import Pipeline
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

@Suite struct RecoveryTests {
    @Test func aCleanStateNeedsNothing() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - true\n")
        _ = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        let report = try await Recovery(context: fixture.context).run(pipelines: [fixture.pipeline])
        #expect(report.isClean, "\(report)")
    }

    @Test func interruptedDeploymentsAndTheirLeftoversAreCleanedUp() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - true\n")
        let live = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        let sha = try fixture.push("two", files: ["a": "2"])
        // A deployment the daemon was running when it died: exported, not switched, with a step still going.
        var (running, _) = try await fixture.store.enqueue(
            DeploymentRequest(app: "hello", trigger: .push, ref: "main", commit: sha))
        running.status = .running
        running.phase = .build
        running.startedAt = Date()
        try await fixture.store.save(running)
        try FileManager.default.createDirectory(
            atPath: fixture.layout.releaseDirectory(running.id), withIntermediateDirectories: true)
        // A step process that outlived the daemon, in a process group of its own.
        let pidFile = fixture.scratch("orphan.pid")
        let orphan = try SpawnedProcess("/usr/bin/setsid", ["sh", "-c", "echo $$ > \(pidFile); exec sleep 300"])
        var group: Int32?
        for _ in 0..<100 where group == nil {
            try await Task.sleep(for: .milliseconds(20))
            group = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap {
                Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        let orphanGroup = try #require(group)
        #expect(ProcessGroup(orphanGroup).isAlive)
        let planned = try await fixture.store.insertSteps([
            StepPlan(deploymentId: running.id, position: 0, phase: .build, name: "slow"),
            StepPlan(deploymentId: running.id, position: 1, phase: .test, name: "later"),
        ])
        var step = planned[0]
        step.status = .running
        step.processGroup = orphanGroup
        try await fixture.store.save(step)
        // A switch cut short: the temporary link was made but never renamed.
        symlink("releases/\(running.id)", fixture.layout.deployTo + "/.current.tmp-1-\(running.id)")

        let report = try await Recovery(context: fixture.context).run(pipelines: [fixture.pipeline])
        #expect(report.interrupted == [running.id])
        #expect(report.endedProcessGroups == [orphanGroup])
        #expect(!ProcessGroup(orphanGroup).isAlive)
        withExtendedLifetime(orphan) {}
        #expect(report.removedReleases == ["hello": [running.id]])
        #expect(report.removedLeftovers["hello"]?.count == 1)
        #expect(fixture.layout.currentRelease() == live.id)
        let after = try #require(try await fixture.store.deployment(running.id))
        #expect(after.status == .interrupted)
        #expect(after.error == "the daemon stopped during build")
        #expect(try await fixture.steps(after).map(\.status) == [.cancelled, .skipped])
    }

    @Test func aDeploymentWhoseLeaseAnotherNodeHoldsIsLeftToIt() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - true\n")
        _ = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        func running(_ message: String, leasedBy owner: String?) async throws -> Deployment {
            let sha = try fixture.push(message, files: ["a": message])
            var (deployment, _) = try await fixture.store.enqueue(
                DeploymentRequest(app: "hello", trigger: .push, ref: "main", commit: sha))
            if let owner {
                _ = try await fixture.store.takeLease(deployment: deployment.id, owner: owner, duration: 60)
            }
            deployment.status = .running
            deployment.phase = .build
            deployment.startedAt = Date()
            try await fixture.store.save(deployment)
            var step = try await fixture.store.insertSteps([
                StepPlan(deploymentId: deployment.id, position: 0, phase: .build, name: "build")
            ])[0]
            step.status = .running
            try await fixture.store.save(step)
            return deployment
        }
        // Another node on the same store runs one; this node ran one before its restart; one has no lease at all.
        let theirs = try await running("two", leasedBy: "elsewhere")
        let ours = try await running("three", leasedBy: fixture.context.node)
        let unleased = try await running("four", leasedBy: nil)

        let report = try await Recovery(context: fixture.context).run(pipelines: [fixture.pipeline])
        #expect(report.interrupted.sorted() == [ours.id, unleased.id])
        #expect(try await fixture.store.deployment(theirs.id)?.status == .running)
        #expect(try await fixture.steps(theirs).map(\.status) == [.running])
        #expect(try await fixture.steps(ours).map(\.status) == [.cancelled])
        #expect(try await fixture.store.deployment(unleased.id)?.status == .interrupted)
    }

    @Test func stepProcessesWithNoRecordedGroupAreFoundByTheirEnvironment() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - \"true\"\n")
        let sha = try fixture.push("one", files: ["a": "1"])
        var (running, _) = try await fixture.store.enqueue(
            DeploymentRequest(app: "hello", trigger: .push, ref: "main", commit: sha))
        running.status = .running
        running.phase = .health
        try await fixture.store.save(running)
        let marker = [
            "SLIPWAY_DEPLOYMENT": String(running.id), "SLIPWAY_DEPLOY_TO": fixture.layout.deployTo,
            "PATH": "/usr/bin:/bin",
        ]
        // A health command the daemon never recorded a group for, in a group of its own as steps are...
        let step = try SpawnedProcess("/bin/sh", ["-c", "exec sleep 300"], environment: marker, output: .null)
        // ...and a service an activate step started with setsid, which must survive.
        let service = try SpawnedProcess(
            "/usr/bin/setsid", ["sh", "-c", "echo $$ > \(fixture.scratch("service.pid")); exec sleep 300"],
            environment: marker, output: .null)
        var servicePID: pid_t?
        for _ in 0..<100 where servicePID == nil {
            try await Task.sleep(for: .milliseconds(20))
            servicePID = (try? String(contentsOfFile: fixture.scratch("service.pid"), encoding: .utf8)).flatMap {
                pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        let serviceID = try #require(servicePID)
        defer { kill(serviceID, SIGKILL) }

        let report = try await Recovery(context: fixture.context).run(pipelines: [fixture.pipeline])
        #expect(step.waitUntilExit() > 128, "the stray step was ended by a signal")
        #expect(kill(serviceID, 0) == 0, "the detached service was left alone")
        withExtendedLifetime(service) {}
        #expect(!report.endedProcessGroups.isEmpty)
    }

    @Test func whenTheStoreAndTheLinkDisagreeTheLinkWins() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - true\n")
        let first = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        let sha = try fixture.push("two", files: ["a": "2"])
        // The daemon switched `current` and died before it could record the release.
        var (running, _) = try await fixture.store.enqueue(
            DeploymentRequest(app: "hello", trigger: .push, ref: "main", commit: sha, message: "two", author: "Ada"))
        running.status = .running
        running.phase = .switch
        running.startedAt = Date()
        try await fixture.store.save(running)
        _ = try await fixture.mirror.export(
            try await fixture.mirror.resolve("main"), to: fixture.layout.releaseDirectory(running.id))
        try await fixture.layout.switchCurrent(to: running.id)

        let report = try await Recovery(context: fixture.context).run(pipelines: [fixture.pipeline])
        #expect(report.correctedLiveReleases == ["hello": running.id])
        #expect(try await fixture.store.appState("hello").liveRelease == running.id)
        let release = try #require(try await fixture.store.release(running.id))
        #expect(release.commit == sha && release.isKept)
        #expect(fixture.layout.hasRelease(first.id), "the earlier release is still kept")
        #expect(report.removedReleases.isEmpty)
    }

    /// A gated push's deployment that had switched `current` when the daemon was killed: git refused the push (the
    /// hook never answered), so the branch still points at what was live, and `current` goes back to it.
    @Test func aGatedDeploymentCutShortAfterItsSwitchIsSwitchedBack() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - true\n")
        let firstSha = try fixture.push("one", files: ["a": "1"])
        let live = try await fixture.deploy(firstSha)
        let sha = try fixture.push("two", files: ["a": "2"])
        try await fixture.mirror.fetch()
        var (running, _) = try await fixture.store.enqueue(
            DeploymentRequest(app: "hello", trigger: .push, ref: "refs/heads/main", commit: sha, gatedFrom: firstSha))
        running.status = .running
        running.phase = .activate
        running.startedAt = Date()
        try await fixture.store.save(running)
        _ = try await fixture.mirror.export(
            try await fixture.mirror.resolve("main"), to: fixture.layout.releaseDirectory(running.id))
        try await fixture.layout.switchCurrent(to: running.id)
        try await fixture.store.save(
            Release(
                id: running.id, app: "hello", commit: sha, message: "two", author: "Ada", createdAt: Date(),
                succeeded: false))
        let gatedID = running.id
        try await fixture.store.updateAppState("hello") { $0.liveRelease = gatedID }

        let report = try await Recovery(context: fixture.context).run(pipelines: [fixture.pipeline])
        #expect(report.interrupted == [running.id])
        #expect(report.switchedBack["hello"].map { [$0.from, $0.to] } == [running.id, live.id])
        #expect(fixture.layout.currentRelease() == live.id)
        #expect(try await fixture.store.appState("hello").liveRelease == live.id)
        #expect(!fixture.layout.hasRelease(running.id), "the refused release never went live for good")
    }

    /// What recovery did, as the operator reads it in the daemon's log: words, not a dump of a struct.
    @Test func theReportIsAReadableSummary() {
        var report = RecoveryReport()
        report.interrupted = [12, 14]
        report.endedProcessGroups = [4242]
        report.removedReleases = ["hello": [14]]
        report.removedLeftovers = ["hello": [".current.tmp-99-14"]]
        report.correctedLiveReleases = ["hello": 12, "web": nil]
        #expect(
            report.summary == [
                "marked interrupted: deployment 12, 14",
                "ended the leftover processes of 1 step(s) (process group 4242)",
                "hello: removed releases that never went live: 14",
                "hello: removed what an interrupted switch left: .current.tmp-99-14",
                "hello: the store now agrees with the current link: release 12 is live",
                "web: the store now agrees with the current link: no release is live",
            ])
        #expect(RecoveryReport().summary.isEmpty)
    }
}
