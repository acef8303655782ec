import Deploy
import Foundation
import GitKit
import Server
import TestSupport
import Testing

@Suite struct QueueTests {
    /// Five pushes while a slow build runs: the first and the last run, the three between are superseded.
    @Test func newerPushesSupersedeQueuedOnesButNeverTheRunningOne() async throws {
        // The build waits for a file the test makes once all five pushes are in, however slow the machine.
        let fixture = try await ServerFixture(
            apps: ["hello": "build:\n  - while [ ! -f \"$SLIPWAY_SHARED_DIR/go\" ]; do sleep 0.02; done\n"])
        var ids: [Int64] = []
        for index in 1...5 {
            let sha = try fixture.push("push \(index)")
            let made = try await fixture.daemon.watcher.pushed(app: "hello", ref: "refs/heads/main", after: sha)
            ids.append(try #require(made.first?.id))
            if index == 1 {
                // Let the first one start before the others arrive.
                while try await fixture.daemon.context.store.deployment(ids[0])?.status != .running {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        try writeFile(fixture.scratch("deploy/hello/shared/go"), "")
        let last = try await fixture.finished(ids[4])
        let all = try await ids.asyncMap { try await fixture.daemon.context.store.deployment($0)! }
        #expect(all.map(\.status) == [.succeeded, .superseded, .superseded, .superseded, .succeeded])
        #expect(all[1].supersededBy == ids[2])
        #expect(all[2].supersededBy == ids[3])
        #expect(all[3].supersededBy == ids[4])
        #expect(last.message == "push 5")
        #expect(all[0].startedAt! < all[4].startedAt!)
    }

    /// The queue hands a deployment to its run a moment before the run marks it `running` in the store. A newer
    /// one arriving in that moment must leave it alone: it has started.
    @Test func aDeploymentThatHasStartedIsNeverSuperseded() async throws {
        let fixture = try await ServerFixture(apps: ["hello": "build:\n  - true\n"])
        let sha = try fixture.push("x")
        let events = fixture.daemon.context.events.subscribe()
        let collector = Task { () -> [Deployment] in
            var seen: [Deployment] = []
            for await event in events { if case .deployment(let deployment) = event { seen.append(deployment) } }
            return seen
        }
        var started: [Int64] = []
        var all: [Int64] = []
        for _ in 0..<5 {
            // With the app idle, the queue starts `first` at once; `second` arrives before the run marks it.
            while await fixture.daemon.queue.runningDeployment(app: "hello") != nil {
                try await Task.sleep(for: .milliseconds(5))
            }
            let first = try await fixture.daemon.queue.submit(Deployment(app: "hello", trigger: .manual, ref: "main", commit: sha))
            let second = try await fixture.daemon.queue.submit(Deployment(app: "hello", trigger: .manual, ref: "main", commit: sha))
            _ = try await fixture.finished(second.id!)
            started.append(first.id!)
            all += [first.id!, second.id!]
        }
        collector.cancel()
        let seen = await collector.value
        #expect(seen.filter { started.contains($0.id!) && $0.status == .superseded }.map(\.id) == [])
        let statuses = try await all.asyncMap { try await fixture.daemon.context.store.deployment($0)!.status }
        #expect(statuses == Array(repeating: .succeeded, count: 10))
    }

    @Test func oneAtATimePerAppButAppsSideBySide() async throws {
        let fixture = try await ServerFixture(apps: ["one": "build:\n  - sleep 0.5\n", "two": "build:\n  - sleep 0.5\n"])
        try fixture.push("x")
        let a = try await fixture.daemon.watcher.deploy(app: "one", ref: nil)
        let b = try await fixture.daemon.watcher.deploy(app: "two", ref: nil)
        let c = try await fixture.daemon.watcher.deploy(app: "one", ref: nil)
        let (da, db, dc) = (try await fixture.finished(a.id!), try await fixture.finished(b.id!), try await fixture.finished(c.id!))
        #expect([da.status, db.status, dc.status] == [.succeeded, .succeeded, .succeeded])
        // Two apps overlapped; one app's deployments did not.
        #expect(db.startedAt! < da.finishedAt!)
        #expect(dc.startedAt! >= da.finishedAt!)
    }

    @Test func cancellingAQueuedOrRunningDeployment() async throws {
        let fixture = try await ServerFixture(apps: ["hello": "build:\n  - sleep 300\n"])
        try fixture.push("x")
        let running = try await fixture.daemon.watcher.deploy(app: "hello", ref: nil)
        while try await fixture.daemon.context.store.deployment(running.id!)?.status != .running {
            try await Task.sleep(for: .milliseconds(20))
        }
        let queued = try await fixture.daemon.watcher.deploy(app: "hello", ref: nil)
        let cancelledQueued = try await fixture.daemon.queue.cancel(queued.id!)
        #expect(cancelledQueued.status == .cancelled)
        _ = try await fixture.daemon.queue.cancel(running.id!)
        let stopped = try await fixture.finished(running.id!)
        #expect(stopped.status == .cancelled)
        await #expect(throws: DeployError.self) { try await fixture.daemon.queue.cancel(running.id!) }
    }

    @Test func aRollbackSticksUntilTheBranchMovesOn() async throws {
        let fixture = try await ServerFixture()
        let watcher = fixture.daemon.watcher
        try fixture.push("one")
        let first = try #require(try await watcher.poll(app: "hello").first)
        #expect(first.trigger == .poll)
        _ = try await fixture.finished(first.id!)
        #expect(try await watcher.poll(app: "hello").isEmpty, "nothing moved")

        try fixture.push("two")
        let second = try #require(try await watcher.poll(app: "hello").first)
        _ = try await fixture.finished(second.id!)
        let rollback = try await watcher.rollback(app: "hello", to: nil)
        _ = try await fixture.finished(rollback.id!)

        // The head is still "two"; neither a poll nor a repeated push notice deploys it again.
        #expect(try await watcher.poll(app: "hello").isEmpty)
        let head = try fixture.work.head()
        #expect(try await watcher.pushed(app: "hello", ref: "refs/heads/main", after: head).isEmpty)
        #expect(try await fixture.daemon.context.store.appState("hello").liveRelease == first.id)

        try fixture.push("three")
        let third = try #require(try await watcher.poll(app: "hello").first)
        #expect(third.message == "three")
    }

    @Test func aBurstOfNoticesSharesFetches() async throws {
        let fixture = try await ServerFixture()
        let sha = try fixture.push("one")
        let watcher = fixture.daemon.watcher
        let made = try await withThrowingTaskGroup(of: [Deployment].self) { group in
            for _ in 0..<20 {
                group.addTask { try await watcher.pushed(app: "hello", ref: "refs/heads/main", after: sha) }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(made.count == 1, "twenty notices of one push make one deployment")
        let metrics = fixture.registry.emitToString()
        let line = try #require(metrics.split(separator: "\n").first { $0.hasPrefix("slipway_fetch_duration_seconds_count{app=\"hello\"}") })
        let fetches = try #require(Int(line.split(separator: " ").last!))
        #expect(fetches <= 4, "fetches: \(fetches)")
    }

    @Test func pathsDecideWhetherAPushDeploys() async throws {
        let fixture = try await ServerFixture(apps: ["api": "paths: [\"services/api/**\", \"Dockerfile\"]\n"])
        let watcher = fixture.daemon.watcher
        let first = try fixture.push("first", files: ["services/api/main.go": "1", "README.md": "r"])
        #expect(try await watcher.pushed(app: "api", ref: "refs/heads/main", after: first).count == 1)
        let docs = try fixture.push("docs only", files: ["README.md": "r2", "services/web/app.js": "w"])
        #expect(try await watcher.pushed(app: "api", ref: "refs/heads/main", after: docs).isEmpty)
        let api = try fixture.push("api change", files: ["services/api/main.go": "2"])
        let deployed = try await watcher.pushed(app: "api", ref: "refs/heads/main", after: api)
        #expect(deployed.first?.message == "api change")
        // A push to another branch never deploys.
        #expect(try await watcher.pushed(app: "api", ref: "refs/heads/other", after: api).isEmpty)
    }

    @Test func aPollingServiceDeploysByItself() async throws {
        let fixture = try await ServerFixture(apps: ["hello": "poll: 200ms\n"])
        try fixture.push("polled")
        let service = PollService(registry: fixture.daemon.registry, watcher: fixture.daemon.watcher, logger: fixture.daemon.context.logger)
        let task = Task { try await service.run() }
        defer { task.cancel() }
        var deployments: [Deployment] = []
        for _ in 0..<200 where deployments.isEmpty {
            try await Task.sleep(for: .milliseconds(50))
            deployments = try await fixture.daemon.context.store.deployments(app: "hello")
        }
        #expect(deployments.first?.trigger == .poll)
        #expect(deployments.first?.message == "polled")
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
