import Foundation
import GitKit
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

/// The queue and the intake behind the engine: one deployment at a time per app, superseding, cancelling, notices,
/// `paths:` and polling. Builds that must overlap wait for files the test makes, never for time to pass.
@Suite struct QueueTests {
    /// A build step that waits until the test creates `shared/<name>`.
    static func waitsFor(_ name: String) -> String {
        "build:\n  - while [ ! -f \"$SLIPWAY_SHARED_DIR/\(name)\" ]; do sleep 0.02; done\n"
    }

    /// Five pushes while a slow build runs: the first and the last run, the three between are superseded.
    @Test func newerPushesSupersedeQueuedOnesButNeverTheRunningOne() async throws {
        let fixture = try await DaemonFixture(apps: ["hello": Self.waitsFor("go")])
        var ids: [Int64] = []
        for index in 1...5 {
            let sha = try fixture.push("push \(index)")
            let made = try await fixture.pushed(after: sha)
            ids.append(try #require(made.first?.id))
            // Let the first one start before the others arrive.
            if index == 1 { try await fixture.started(ids[0]) }
        }
        try writeFile(fixture.apps.deployTo("hello") + "/shared/go", "")
        let last = try await fixture.finished(ids[4])
        var all: [Deployment] = []
        for id in ids { all.append(try #require(try await fixture.store.deployment(id))) }
        #expect(all.map(\.status) == [.succeeded, .superseded, .superseded, .superseded, .succeeded])
        #expect(all[1].supersededBy == ids[2])
        #expect(all[2].supersededBy == ids[3])
        #expect(all[3].supersededBy == ids[4])
        #expect(last.message == "push 5")
        #expect(all[0].startedAt! < all[4].startedAt!)
    }

    /// The queue hands a deployment to its run a moment before the run marks it `running` in the store. A newer one
    /// arriving in that moment must leave it alone: it has started.
    @Test func aDeploymentThatHasStartedIsNeverSuperseded() async throws {
        let fixture = try await DaemonFixture(apps: ["hello": "build:\n  - true\n"])
        let sha = try fixture.push("x")
        let events = fixture.daemon.events()
        let collector = Task { () -> [API.Deployment] in
            var seen: [API.Deployment] = []
            for await deployment in events { seen.append(deployment) }
            return seen
        }
        var started: [Int64] = []
        var all: [Int64] = []
        let request = DeploymentRequest(app: "hello", trigger: .manual, ref: "main", commit: sha)
        for _ in 0..<5 {
            // With the app idle, the queue starts `first` at once; `second` arrives before the run marks it. (The
            // app is idle once the queue has taken back the previous run's slot, a moment after its last event.)
            while await fixture.daemon.queue.runningDeployment(app: "hello") != nil {
                try await Task.sleep(for: .milliseconds(5))
            }
            let first = try await fixture.daemon.queue.submit(request)
            let second = try await fixture.daemon.queue.submit(request)
            _ = try await fixture.finished(second.id)
            started.append(first.id)
            all += [first.id, second.id]
        }
        collector.cancel()
        let seen = await collector.value
        let errors = try await all.asyncMap { try await fixture.store.deployment($0)?.error }
        #expect(errors.allSatisfy { $0 == nil }, "\(errors)")
        #expect(seen.filter { started.contains($0.id) && $0.status == .superseded }.map(\.id) == [])
        var statuses: [DeploymentStatus] = []
        for id in all { statuses.append(try #require(try await fixture.store.deployment(id)).status) }
        #expect(statuses == Array(repeating: .succeeded, count: 10))
    }

    /// Two apps build at the same time while the second deployment of one of them waits for the first: the builds
    /// hold until both have started, which they can only do side by side.
    @Test func oneAtATimePerAppButAppsSideBySide() async throws {
        let build =
            "build:\n  - touch \"$SLIPWAY_SHARED_DIR/started-$SLIPWAY_DEPLOYMENT\"\n"
            + "  - while [ ! -f \"$SLIPWAY_SHARED_DIR/go\" ]; do sleep 0.02; done\n"
        let fixture = try await DaemonFixture(apps: ["one": build, "two": build])
        try fixture.push("x")
        let a = try await fixture.intake.deploy(app: "one", ref: nil)
        let b = try await fixture.intake.deploy(app: "two", ref: nil)
        let c = try await fixture.intake.deploy(app: "one", ref: nil)
        let shared = { (app: String) in fixture.apps.deployTo(app) + "/shared" }
        while !FileManager.default.fileExists(atPath: shared("one") + "/started-\(a.id)")
            || !FileManager.default.fileExists(atPath: shared("two") + "/started-\(b.id)")
        {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await fixture.store.deployment(c.id)?.status == .queued, "one app's deployments take turns")
        for app in ["one", "two"] { try writeFile(shared(app) + "/go", "") }
        let (da, db, dc) = (
            try await fixture.finished(a.id), try await fixture.finished(b.id), try await fixture.finished(c.id)
        )
        #expect([da.status, db.status, dc.status] == [.succeeded, .succeeded, .succeeded])
        #expect(dc.startedAt! >= da.finishedAt!)
    }

    @Test func cancellingAQueuedOrRunningDeployment() async throws {
        let fixture = try await DaemonFixture(apps: ["hello": "build:\n  - sleep 300\n"])
        try fixture.push("x")
        let running = try await fixture.intake.deploy(app: "hello", ref: nil)
        try await fixture.started(running.id)
        let queued = try await fixture.intake.deploy(app: "hello", ref: nil)
        let cancelledQueued = try await fixture.daemon.cancel(queued.id)
        #expect(cancelledQueued.status == .cancelled)
        _ = try await fixture.daemon.cancel(running.id)
        let stopped = try await fixture.finished(running.id)
        #expect(stopped.status == .cancelled)
        await #expect(throws: DeployError.self) { try await fixture.daemon.cancel(running.id) }
        await #expect(throws: DeployError.notFound("there is no deployment 999")) {
            try await fixture.daemon.cancel(999)
        }
    }

    @Test func aRollbackSticksUntilTheBranchMovesOn() async throws {
        let fixture = try await DaemonFixture()
        let intake = fixture.intake
        try fixture.push("one")
        let first = try #require(try await intake.poll(app: "hello").first)
        #expect(first.trigger == .poll)
        _ = try await fixture.finished(first.id)
        #expect(try await intake.poll(app: "hello").isEmpty, "nothing moved")

        try fixture.push("two")
        let second = try #require(try await intake.poll(app: "hello").first)
        _ = try await fixture.finished(second.id)
        let rollback = try await intake.rollback(app: "hello", to: nil)
        _ = try await fixture.finished(rollback.id)

        // The head is still "two"; neither a poll nor a repeated push notice deploys it again.
        #expect(try await intake.poll(app: "hello").isEmpty)
        #expect(try await fixture.pushed(after: try fixture.work.head()).isEmpty)
        #expect(try await fixture.store.appState("hello").liveRelease == first.id)

        try fixture.push("three")
        let third = try #require(try await intake.poll(app: "hello").first)
        #expect(third.message == "three")
    }

    /// A head that no notice saw but that is live already (deployed by hand here; a restored, older state next to
    /// a newer deploy_to is the same case) is not deployed again by the next poll or notice.
    @Test func aHeadThatIsLiveAlreadyIsNotDeployedAgain() async throws {
        let fixture = try await DaemonFixture()
        let intake = fixture.intake
        try fixture.push("one")
        _ = try await fixture.finished(try #require(try await intake.poll(app: "hello").first).id)
        let two = try fixture.push("two")
        let manual = try await intake.deploy(app: "hello", ref: nil)
        #expect(try await fixture.finished(manual.id).commit == two)
        #expect(try await intake.poll(app: "hello").isEmpty, "two is live")
        #expect(try await fixture.pushed(after: two).map(\.id) == [manual.id], "the notice follows the manual deploy")
        #expect(try await fixture.store.deployments(app: "hello").count == 2)
    }

    /// Twenty notices of one push make one deployment and one fetch: each notice after the first finds that the
    /// last fetch already saw the commit it names, and answers with the deployment the first one started.
    @Test func aBurstOfNoticesSharesOneFetch() async throws {
        let fixture = try await DaemonFixture()
        let sha = try fixture.push("one")
        let made = try await withThrowingTaskGroup(of: [Deployment].self) { group in
            for _ in 0..<20 { group.addTask { try await fixture.pushed(after: sha) } }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(made.count == 20, "every notice answers with a deployment to follow")
        #expect(Set(made.map(\.id)).count == 1, "twenty notices of one push make one deployment")
        let metrics = fixture.registry.emitToString()
        let line = try #require(
            metrics.split(separator: "\n").first { $0.hasPrefix("slipway_fetch_duration_seconds_count{app=\"hello\"}") }
        )
        #expect(line.split(separator: " ").last == "1")
    }

    /// A poll that sees a pushed commit before the push's own notice arrives deploys it; the notice then answers
    /// with that deployment, so that the pusher follows it to its end rather than hearing there is nothing to deploy.
    @Test func aNoticeOfAHeadAPollDeployedFirstAnswersWithThatDeployment() async throws {
        let fixture = try await DaemonFixture(apps: ["hello": "build:\n  - exit 3\n"])
        let sha = try fixture.push("one")
        let polled = try #require(try await fixture.intake.poll(app: "hello").first)
        #expect(polled.trigger == .poll)
        let told = try await fixture.pushed(after: sha)
        #expect(told.map(\.id) == [polled.id])
        #expect(try await fixture.finished(polled.id).status == .failed, "the pusher hears that it failed")
        // Once a newer deployment has started, a notice of the older commit again has nothing to follow.
        let next = try #require(try await fixture.pushed(after: try fixture.push("two")).first)
        _ = try await fixture.finished(next.id)
        #expect(try await fixture.pushed(after: sha).isEmpty)
    }

    @Test func pathsDecideWhetherAPushDeploys() async throws {
        let fixture = try await DaemonFixture(apps: ["api": "paths: [\"services/api/**\", \"Dockerfile\"]\n"])
        let first = try fixture.push("first", files: ["services/api/main.go": "1", "README.md": "r"])
        #expect(try await fixture.pushed("api", after: first).count == 1)
        let docs = try fixture.push("docs only", files: ["README.md": "r2", "services/web/app.js": "w"])
        #expect(try await fixture.pushed("api", after: docs).isEmpty)
        let api = try fixture.push("api change", files: ["services/api/main.go": "2"])
        let deployed = try await fixture.pushed("api", after: api)
        #expect(deployed.first?.message == "api change")
        // A push to another branch never deploys.
        #expect(try await fixture.pushed("api", ref: "refs/heads/other", after: api).isEmpty)
    }

    /// The poll service catches up first (a head pushed before it started, trigger `catch_up`), then polls.
    @Test func aPollingServiceCatchesUpAndThenDeploysByItself() async throws {
        let fixture = try await DaemonFixture(apps: ["hello": "poll: 200ms\n"])
        try fixture.push("before")
        let events = fixture.daemon.events()
        let service = PollService(
            registry: fixture.daemon.registry, intake: fixture.intake, logger: fixture.daemon.context.logger)
        let task = Task { try await service.run() }
        defer { task.cancel() }
        var seen: [API.Deployment] = []
        for await deployment in events where deployment.app == "hello" && deployment.status == .succeeded {
            seen.append(deployment)
            if seen.count == 1 { try fixture.push("polled") }
            if seen.count == 2 { break }
        }
        #expect(seen.map(\.trigger) == [.catchUp, .poll])
        #expect(seen.map(\.message) == ["before", "polled"])
    }

}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
