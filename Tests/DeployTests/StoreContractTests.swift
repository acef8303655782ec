import Foundation
import Logging
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

/// What every store must do, whatever it keeps its records in. Each test runs against every kind of store this
/// machine can run: the embedded SQLite store always, others when their server is available.
@Suite struct StoreContractTests {
    /// A store of one kind, opened on a fresh place, and opened again there as after a restart.
    struct Kind: Sendable, CustomTestStringConvertible {
        let name: String
        let open: @Sendable (ScratchDirectory) async throws -> any DeployStore

        var testDescription: String { name }

        static let sqlite = Kind(name: "sqlite") { scratch in try SQLiteStore(path: scratch("slipway.sqlite")) }

        /// A database of the scratch directory's own on the test server (see `TestPostgres`).
        static let postgres = Kind(name: "postgres") { scratch in
            try await PostgresStore.open(try await TestPostgres.database(for: scratch), logger: Logger(label: "test"))
        }

        /// PostgreSQL when the test server is given (`script/test` always gives one); the tests of
        /// `PostgresStoreTests` say so when it is not.
        static var all: [Kind] { TestPostgres.isAvailable ? [.sqlite, .postgres] : [.sqlite] }
    }

    func request(_ app: String, _ commit: String, trigger: DeploymentTrigger = .push) -> DeploymentRequest {
        DeploymentRequest(app: app, trigger: trigger, ref: "refs/heads/main", commit: commit, message: "m", author: "a")
    }

    @Test(arguments: Kind.all) func idsIncreaseAcrossAppsAndAreNeverReused(kind: Kind) async throws {
        let scratch = ScratchDirectory("slipway-store")
        let store = try await kind.open(scratch)
        let a = try await store.insert(request("a", "1"))
        let b = try await store.insert(request("b", "2"))
        #expect(b.id > a.id)
        let reopened = try await kind.open(scratch)
        let c = try await reopened.insert(request("a", "3"))
        #expect(c.id > b.id)
    }

    @Test(arguments: Kind.all) func reservedIdsAreNeverGivenEvenToAFreshStore(kind: Kind) async throws {
        let scratch = ScratchDirectory("slipway-store")
        let store = try await kind.open(scratch)
        try await store.reserveDeploymentIDs(above: 41)
        let first = try await store.insert(request("a", "1"))
        #expect(first.id == 42)
        // A reservation below what was given changes nothing.
        try await store.reserveDeploymentIDs(above: 5)
        let second = try await kind.open(scratch).insert(request("a", "2"))
        #expect(second.id == 43)
    }

    @Test(arguments: Kind.all) func whatIsSavedReadsBackTheSame(kind: Kind) async throws {
        let store = try await kind.open(ScratchDirectory("slipway-store"))
        var deployment = try await store.insert(request("a", String(repeating: "a", count: 40)))
        #expect(deployment.status == .queued && deployment.phase == .fetch && deployment.trigger == .push)
        deployment.status = .failed
        deployment.phase = .health
        deployment.startedAt = Date(timeIntervalSince1970: 1_795_600_800.5)
        deployment.finishedAt = Date(timeIntervalSince1970: 1_795_600_801.25)
        deployment.durationMs = 1377
        deployment.rolledBackTo = 7
        deployment.error = "the health check failed after 1s; ünïcode ✓"
        try await store.save(deployment)
        let loaded = try #require(try await store.deployment(deployment.id))
        #expect(loaded == deployment)
        #expect(try await store.deployment(999_999) == nil)
    }

    @Test(arguments: Kind.all) func enqueueSupersedesOnlyThatAppsQueuedDeployments(kind: Kind) async throws {
        let store = try await kind.open(ScratchDirectory("slipway-store"))
        var running = try await store.insert(request("a", "1"))
        running.status = .running
        try await store.save(running)
        let (first, _) = try await store.enqueue(request("a", "2"))
        let (other, _) = try await store.enqueue(request("b", "x"))
        let (started, _) = try await store.enqueue(request("c", "y"))
        let (second, superseded) = try await store.enqueue(request("a", "3"))
        #expect(superseded.map(\.id) == [first.id])
        #expect(try await store.deployment(first.id)?.status == .superseded)
        #expect(try await store.deployment(first.id)?.supersededBy == second.id)
        #expect(try await store.deployment(running.id)?.status == .running, "a running deployment is never superseded")
        #expect(try await store.deployment(other.id)?.status == .queued, "other apps are not touched")
        // One the queue has handed to its run is spared, though the store still says queued.
        let (_, spared) = try await store.enqueue(request("c", "z"), sparing: started.id)
        #expect(spared.isEmpty)
        #expect(try await store.queuedCounts() == ["a": 1, "b": 1, "c": 2])
        #expect(
            try await store.deployments(status: .queued).map(\.id) == [other.id, started.id, second.id, second.id + 1])
    }

    @Test(arguments: Kind.all) func listingsAreNewestFirstAndPageByID(kind: Kind) async throws {
        let store = try await kind.open(ScratchDirectory("slipway-store"))
        var ids: [Int64] = []
        for index in 0..<12 { ids.append(try await store.insert(request(index % 2 == 0 ? "a" : "b", "\(index)")).id) }
        let a = ids.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        #expect(try await store.deployments(app: "a", limit: 3, before: nil).map(\.id) == Array(a.reversed().prefix(3)))
        #expect(try await store.deployments(app: "a", limit: 50, before: a[3]).map(\.id) == [a[2], a[1], a[0]])
        #expect(try await store.latestDeployments().mapValues(\.id) == ["a": a.last!, "b": ids.last!])
    }

    /// The deployment that decides an app's status: the newest that succeeded, failed or was interrupted, not
    /// counting automatic rollbacks (whose success does not make a failed deploy good).
    @Test(arguments: Kind.all) func theLatestOutcomeSkipsAutomaticRollbacksAndUnfinishedOnes(kind: Kind) async throws {
        let store = try await kind.open(ScratchDirectory("slipway-store"))
        func finished(
            _ app: String, _ status: DeploymentStatus, trigger: DeploymentTrigger = .push
        ) async throws -> Int64 {
            var deployment = try await store.insert(request(app, "c", trigger: trigger))
            deployment.status = status
            try await store.save(deployment)
            return deployment.id
        }
        let failed = try await finished("a", .failed)
        _ = try await finished("a", .succeeded, trigger: .autoRollback)
        _ = try await finished("a", .cancelled)
        _ = try await store.enqueue(request("a", "d"))
        let good = try await finished("b", .succeeded)
        let outcomes = try await store.latestOutcomes()
        #expect(outcomes["a"]?.id == failed)
        #expect(outcomes["b"]?.id == good)
        #expect(outcomes["c"] == nil)
    }

    @Test(arguments: Kind.all) func stepsKeepTheirOrderAndTheirProcessGroupWhileRunning(kind: Kind) async throws {
        let store = try await kind.open(ScratchDirectory("slipway-store"))
        let deployment = try await store.insert(request("a", "1"))
        var steps = try await store.insertSteps([
            StepPlan(deploymentId: deployment.id, position: 0, phase: .build, name: "make"),
            StepPlan(deploymentId: deployment.id, position: 1, phase: .test, name: "check"),
            StepPlan(deploymentId: deployment.id, position: 2, phase: .health, name: "GET /up"),
        ])
        #expect(steps.map(\.status) == [.pending, .pending, .pending])
        try await store.setProcessGroup(step: steps[0].id, group: 4242)
        #expect(try await store.steps(deployment: deployment.id)[0].processGroup == nil, "only a running step has one")
        steps[0].status = .running
        try await store.save(steps[0])
        try await store.setProcessGroup(step: steps[0].id, group: 4242)
        #expect(try await store.runningSteps().map(\.processGroup) == [4242])
        steps[0].status = .succeeded
        steps[0].exitCode = 0
        steps[0].processGroup = nil
        steps[0].durationMs = 12
        try await store.save(steps[0])
        let loaded = try await store.steps(deployment: deployment.id)
        #expect(loaded.map(\.phase) == [.build, .test, .health])
        #expect(loaded[0] == steps[0])
        #expect(try await store.runningSteps().isEmpty)
    }

    @Test(arguments: Kind.all) func releasesAndAppStates(kind: Kind) async throws {
        let store = try await kind.open(ScratchDirectory("slipway-store"))
        let made = Date(timeIntervalSince1970: 1_795_600_800)
        for id in [3, 5, 9] as [Int64] {
            try await store.save(
                Release(
                    id: id, app: "a", commit: "c\(id)", message: "m", author: "x", createdAt: made, succeeded: id != 5))
        }
        var removed = try #require(try await store.release(3))
        removed.removedAt = made
        try await store.save(removed)
        #expect(try await store.releases(app: "a").map(\.id) == [9, 5])
        #expect(try await store.releases(app: "a", includeRemoved: true).map(\.id) == [9, 5, 3])
        #expect(try await store.releases(ids: [5, 9, 77]).keys.sorted() == [5, 9])
        #expect(try await store.appState("a") == AppState(app: "a"))
        try await store.updateAppState("a") { $0.liveRelease = 9 }
        let state = try await store.updateAppState("a") { $0.lastSeenHead = "abc" }
        #expect(state == AppState(app: "a", liveRelease: 9, lastSeenHead: "abc"))
        #expect(try await store.appStates() == ["a": state])
    }

    /// Changes to one app's state are transactions: many at once lose none. (On a loaded machine a PostgreSQL
    /// transaction may fail to get a connection in time; it then says so, and is not counted. A lost update would
    /// leave the total below the number that succeeded.)
    @Test(arguments: Kind.all) func appStateChangesDoNotLoseEachOther(kind: Kind) async throws {
        let store = try await kind.open(ScratchDirectory("slipway-store"))
        try await store.updateAppState("a") { $0.liveRelease = 0 }
        let succeeded = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    (try? await store.updateAppState("a") { $0.liveRelease = ($0.liveRelease ?? 0) + 1 }) != nil
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(succeeded > 0)
        #expect(try await store.appState("a").liveRelease == Int64(succeeded))
    }

    @Test(arguments: Kind.all) func deliveryIdsAreRecordedOnce(kind: Kind) async throws {
        let scratch = ScratchDirectory("slipway-store")
        let store = try await kind.open(scratch)
        #expect(try await store.recordDelivery(id: "github:abc", provider: "github"))
        #expect(try await store.recordDelivery(id: "github:abc", provider: "github") == false)
        #expect(try await store.recordDelivery(id: "gitlab:abc", provider: "gitlab"))
        // Durable once flushed (at once, on shutdown), and known again after a restart.
        await store.flushDeliveries()
        let reopened = try await kind.open(scratch)
        #expect(try await reopened.recordDelivery(id: "github:abc", provider: "github") == false)
        try await reopened.pruneDeliveries(olderThan: -1)
        #expect(try await reopened.recordDelivery(id: "github:abc", provider: "github"), "forgotten after pruning")
    }

    @Test(arguments: Kind.all) func importedHistoryKeepsEveryField(kind: Kind) async throws {
        let store = try await kind.open(ScratchDirectory("slipway-store"))
        var old = Deployment(
            id: 0, app: "a", trigger: .webhook, ref: "refs/heads/main", commit: "c", message: "m", author: "x",
            status: .succeeded, phase: .done, createdAt: Date(timeIntervalSince1970: 1_795_000_000))
        old.finishedAt = Date(timeIntervalSince1970: 1_795_000_012)
        old.durationMs = 12_000
        let imported = try await store.importHistory([old, old])
        #expect(imported.count == 2 && imported[1].id > imported[0].id)
        var expected = old
        expected.id = imported[0].id
        #expect(try await store.deployment(imported[0].id) == expected)
    }

    @Test(arguments: Kind.all) func nodesAreUpWhileTheirHeartbeatIsFreshAndDownOnceStopped(kind: Kind) async throws {
        let scratch = ScratchDirectory("slipway-store")
        let store = try await kind.open(scratch)
        #expect(try await store.nodes(downAfter: 60).isEmpty)
        let started = Date(timeIntervalSince1970: 1_795_000_000.25)
        try await store.heartbeat(node: "web-2", version: "1.0.0", startedAt: started)
        try await store.heartbeat(node: "web-1", version: "1.0.0", startedAt: started)
        let nodes = try await store.nodes(downAfter: 60)
        #expect(nodes.map(\.name) == ["web-1", "web-2"], "by name")
        #expect(nodes.allSatisfy { $0.up && $0.startedAt == started && $0.version == "1.0.0" })
        #expect(abs(nodes[0].lastSeen.timeIntervalSinceNow) < 60, "at the store's clock, which is this machine's")
        // A heartbeat older than `downAfter` is down.
        #expect(try await store.nodes(downAfter: 0).allSatisfy { !$0.up })

        // A stop is down at once; the next heartbeat, of a new start, is up again, with its own start and version.
        try await store.nodeStopped("web-1")
        #expect(try await store.nodes(downAfter: 60).map(\.up) == [false, true])
        let restarted = started.addingTimeInterval(3600)
        try await kind.open(scratch).heartbeat(node: "web-1", version: "1.1.0", startedAt: restarted)
        let again = try await kind.open(scratch).nodes(downAfter: 60)
        #expect(again[0].up && again[0].startedAt == restarted && again[0].version == "1.1.0")
        #expect(again[0].lastSeen >= nodes[0].lastSeen)
    }

    @Test(arguments: Kind.all) func aLeaseHasOneOwnerAndItsFencingTokenOnlyGrows(kind: Kind) async throws {
        let scratch = ScratchDirectory("slipway-store")
        let store = try await kind.open(scratch)
        let deployment = try await store.insert(request("a", "1"))
        let first = try #require(try await store.takeLease(deployment: deployment.id, owner: "n1", duration: 60))
        #expect(first.deploymentID == deployment.id && first.owner == "n1")
        #expect(try await store.takeLease(deployment: deployment.id, owner: "n2", duration: 60) == nil, "n1 holds it")
        #expect(try await store.holdsLease(first, margin: 30))
        #expect(try await store.holdsLease(first, margin: 120) == false, "not for that long")
        #expect(try await store.renewLease(first, duration: 120))
        #expect(try await store.holdsLease(first, margin: 90), "renewed")
        #expect(try await store.leaseHolder(deployment: deployment.id) == "n1")
        #expect(try await store.leaseHolder(deployment: 999) == nil, "never leased")

        // Its owner may take it again (a restart): a greater token, and the old lease is gone.
        let again = try #require(try await store.takeLease(deployment: deployment.id, owner: "n1", duration: 60))
        #expect(again.fence > first.fence)
        #expect(try await store.holdsLease(first, margin: 0) == false)
        #expect(try await store.renewLease(first, duration: 60) == false)

        // An expired lease is lost even when nobody took it, and then anyone may take it, with a greater token,
        // also after the store is opened again.
        let other = try await store.insert(request("a", "2"))
        let short = try #require(try await store.takeLease(deployment: other.id, owner: "n1", duration: 0.05))
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await store.renewLease(short, duration: 60) == false)
        #expect(try await store.holdsLease(short, margin: 0) == false)
        #expect(try await store.leaseHolder(deployment: other.id) == nil, "expired")
        let taken = try #require(
            try await kind.open(scratch).takeLease(deployment: other.id, owner: "n2", duration: 60))
        #expect(taken.fence > short.fence && short.fence > again.fence)
    }

    @Test(arguments: Kind.all) func onlyRunningDeploymentsWhoseLeaseExpiredAreInterrupted(kind: Kind) async throws {
        let store = try await kind.open(ScratchDirectory("slipway-store"))
        func running(_ commit: String) async throws -> Deployment {
            var deployment = try await store.insert(request("a", commit))
            deployment.status = .running
            deployment.startedAt = Date()
            try await store.save(deployment)
            return deployment
        }
        let expired = try await running("1")
        let held = try await running("2")
        let unleased = try await running("3")
        let queued = try await store.insert(request("b", "4"))
        _ = try await store.takeLease(deployment: expired.id, owner: "dead", duration: 0.05)
        _ = try await store.takeLease(deployment: held.id, owner: "alive", duration: 60)
        _ = try await store.takeLease(deployment: queued.id, owner: "dead", duration: 0.05)
        try await Task.sleep(for: .milliseconds(200))

        let interrupted = try await store.interruptExpiredLeases(reason: "its node died")
        #expect(interrupted.map(\.id) == [expired.id])
        let ended = try #require(try await store.deployment(expired.id))
        #expect(ended == interrupted.first)
        #expect(ended.status == .interrupted && ended.error == "its node died" && ended.finishedAt != nil)
        #expect(try await store.deployment(held.id)?.status == .running)
        #expect(try await store.deployment(unleased.id)?.status == .running, "start-up recovery's to end")
        #expect(try await store.deployment(queued.id)?.status == .queued)
        #expect(try await store.interruptExpiredLeases(reason: "again").isEmpty, "once")
    }
}
