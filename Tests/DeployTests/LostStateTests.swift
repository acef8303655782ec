import Foundation
import GRDB
import Pipeline
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

/// A state directory lost or restored from an older copy next to a live `deploy_to`, and a state disk that fills:
/// nothing that may be someone's live site is deleted, and the link and the store end up agreeing.
@Suite struct LostStateTests {
    @Test func aLostStoreAdoptsTheReleasesOnDiskAndNeverReusesTheirIds() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - true\n")
        var shas: [String] = []
        for number in 1...3 {
            let sha = try fixture.push("commit \(number)", files: ["a": "\(number)"])
            shas.append(sha)
            #expect(try await fixture.deploy(sha).status == .succeeded)
        }
        let live = try #require(fixture.layout.currentRelease())

        // The state directory is gone: a new store next to the same deploy_to.
        fixture.context.store = try SQLiteStore(path: fixture.scratch("state2/slipway.sqlite"))
        let report = try await Recovery(context: fixture.context).run(pipelines: [fixture.pipeline])
        #expect(report.adoptedReleases["hello"] == fixture.layout.releasesOnDisk())
        #expect(report.removedReleases.isEmpty)
        #expect(fixture.layout.currentRelease() == live)
        #expect(try await fixture.store.appState("hello").liveRelease == live)
        let adopted = try await fixture.store.releases(app: "hello")
        #expect(adopted.map(\.commit) == Array(shas.reversed()), "what each release is was read from beside it")
        #expect(adopted.allSatisfy { $0.succeeded && $0.message.hasPrefix("commit ") })

        // The next deployments get ids above every directory, and rolling back to an adopted release works.
        let next = try await fixture.deploy(try fixture.push("commit 4", files: ["a": "4"]))
        #expect(next.status == .succeeded)
        #expect(next.id > live)
        #expect(try await fixture.rollback(to: .release(live)).status == .succeeded)
        #expect(fixture.layout.currentRelease() == live)
    }

    /// An app added while the daemon runs, whose `deploy_to` already holds releases (moved from another machine,
    /// or a state directory started afresh): on reload they are adopted, not overwritten.
    @Test func anAppAddedOnReloadAdoptsWhatItsDeployToHolds() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - true\n")
        for number in 1...2 {
            #expect(
                try await fixture.deploy(try fixture.push("commit \(number)", files: ["a": "\(number)"])).status
                    == .succeeded)
        }
        let live = try #require(fixture.layout.currentRelease())
        fixture.context.store = try SQLiteStore(path: fixture.scratch("state2/slipway.sqlite"))
        let report = try await Recovery(context: fixture.context).adopt([fixture.pipeline])
        #expect(report.adoptedReleases["hello"] == fixture.layout.releasesOnDisk())
        #expect(report.correctedLiveReleases["hello"] == live)
        #expect(try await fixture.store.appState("hello").liveRelease == live)
        let next = try await fixture.deploy(try fixture.push("commit 3", files: ["a": "3"]))
        #expect(next.status == .succeeded && next.id > live, "\(next.id) after \(live)")
        #expect(fixture.layout.hasRelease(live), "the release that was live is kept")
    }

    @Test func anOlderStoreRestoredKeepsTheReleasesItDoesNotKnow() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - true\n")
        _ = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        // A copy of the store, taken while a second deployment waits (it goes live after the copy was taken).
        let sha = try fixture.push("two", files: ["a": "2"])
        try await fixture.mirror.fetch()
        let (second, _) = try await fixture.store.enqueue(
            DeploymentRequest(app: "hello", trigger: .push, ref: "refs/heads/main", commit: sha))
        let backup = fixture.scratch("backup.sqlite")
        let sqlite = try #require(fixture.store as? SQLiteStore)
        try sqlite.database.backup(to: try DatabaseQueue(path: backup))
        #expect(await fixture.run(second).status == .succeeded)
        let third = try await fixture.deploy(try fixture.push("three", files: ["a": "3"]))
        #expect(third.status == .succeeded)

        fixture.context.store = try SQLiteStore(path: backup)
        let report = try await Recovery(context: fixture.context).run(pipelines: [fixture.pipeline])
        #expect(report.removedReleases.isEmpty, "\(report.summary)")
        #expect(Set(report.adoptedReleases["hello"] ?? []) == [second.id, third.id])
        #expect(fixture.layout.currentRelease() == third.id)
        #expect(try await fixture.store.appState("hello").liveRelease == third.id)
        let next = try await fixture.deploy(try fixture.push("four", files: ["a": "4"]))
        #expect(next.status == .succeeded && next.id > third.id)
    }

    @Test func aDirectoryWithNothingKnownOfItIsAdoptedAndAnExportNeverTakesItsPlace() async throws {
        let fixture = try await DeployFixture(yaml: "build:\n  - true\n")
        try fixture.layout.prepare()
        // Someone's release 1, made by another tool or an older version, and live.
        let theirs = fixture.layout.releaseDirectory(1)
        try FileManager.default.createDirectory(atPath: theirs, withIntermediateDirectories: true)
        try "theirs".write(toFile: theirs + "/index.html", atomically: false, encoding: .utf8)
        try await fixture.layout.switchCurrent(to: 1)

        // Without recovery, a new store would give the first deployment id 1: its export must leave it alone.
        let refused = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        #expect(refused.id == 1)
        #expect(refused.status == .failed)
        #expect(refused.error?.contains("releases/1") == true && refused.error?.contains("leaves it alone") == true)
        #expect(try String(contentsOfFile: theirs + "/index.html", encoding: .utf8) == "theirs")
        #expect(fixture.layout.currentRelease() == 1)

        // With recovery at start-up, it is adopted (nothing is known of it) and the next id is above it.
        fixture.context.store = try SQLiteStore(path: fixture.scratch("state2/slipway.sqlite"))
        let report = try await Recovery(context: fixture.context).run(pipelines: [fixture.pipeline])
        #expect(report.adoptedReleases["hello"] == [1])
        let adopted = try #require(try await fixture.store.release(1))
        #expect(adopted.commit == "" && adopted.isKept)
        let next = try await fixture.deploy(try fixture.push("two", files: ["a": "2"]))
        #expect(next.status == .succeeded && next.id == 2)
        #expect(fixture.layout.hasRelease(1), "the adopted release is kept as the previous one")
    }

    /// A fixture whose store is a `FaultyStore` over the real one, and that store.
    static func withFaultyStore(yaml: String) async throws -> (DeployFixture, FaultyStore) {
        let faulty = Locked<FaultyStore?>(nil)
        let fixture = try await DeployFixture(yaml: yaml) { base in
            let store = FaultyStore(base)
            faulty.withLock { $0 = store }
            return store
        }
        return (fixture, try #require(faulty.withLock { $0 }))
    }

    @Test func aDeploymentWhoseSwitchCannotBeRecordedDoesNotSwitch() async throws {
        let (fixture, store) = try await Self.withFaultyStore(yaml: "build:\n  - true\n")
        let first = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        store.fail([.saveSwitchingDeployment])
        let second = try await fixture.deploy(try fixture.push("two", files: ["a": "2"]))
        #expect(second.status == .failed)
        #expect(second.error?.contains("the state disk is full") == true, "\(second.error ?? "")")
        #expect(fixture.layout.currentRelease() == first.id)
        #expect(!fixture.layout.hasRelease(second.id))
        #expect(try await fixture.store.appState("hello").liveRelease == first.id)
    }

    /// An outcome that cannot be written when the deployment ends is kept, and written once the store can: the
    /// deployment does not stay `running` until the next start.
    @Test func anOutcomeThatCannotBeWrittenIsWrittenOnceTheStoreCan() async throws {
        let (fixture, store) = try await Self.withFaultyStore(yaml: "build:\n  - true\n")
        store.fail([.saveDeployment, .updateStep])
        let ended = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        #expect(ended.status == .failed)
        #expect(try await store.deployment(ended.id)?.status != .failed, "not written yet")
        let records = fixture.context.unsaved
        await records.write(to: store, logger: fixture.context.logger)
        #expect(!(await records.isEmpty), "the disk is still full")

        store.fail([])
        await records.write(to: store, logger: fixture.context.logger)
        #expect(await records.isEmpty)
        let written = try await store.deployment(ended.id)
        #expect(written?.status == .failed && written?.error == ended.error && written?.finishedAt != nil)
        let steps = try await store.steps(deployment: ended.id).map { "\($0.name) \($0.status.rawValue)" }
        #expect(steps == ["true succeeded"], "the build step's end too")
    }

    /// A run that has lost its lease (another node took the deployment over) does not switch `current`, and
    /// records no outcome: the deployment is the new holder's to end.
    @Test func aDeploymentThatLostItsLeaseNeitherSwitchesNorRecordsAnOutcome() async throws {
        let (fixture, store) = try await Self.withFaultyStore(yaml: "build:\n  - true\n")
        let first = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        #expect(first.status == .succeeded)
        store.loseLeases()
        let second = try await fixture.deploy(try fixture.push("two", files: ["a": "2"]))
        #expect(fixture.layout.currentRelease() == first.id)
        #expect(!fixture.layout.hasRelease(second.id), "its release never went live, and went")
        #expect(try await fixture.store.appState("hello").liveRelease == first.id)
        let recorded = try #require(try await store.deployment(second.id))
        #expect(recorded.status == .running && recorded.finishedAt == nil, "no outcome: \(recorded)")
        let log = try String(contentsOfFile: fixture.context.logPath(deployment: second.id), encoding: .utf8)
        // It stops at the check before its switch, or sooner if a renewal (every 10 s) found the lease lost first.
        #expect(log.contains("lost its lease and records nothing more"), "\(log)")

        // Until its lease expires, a sweep leaves it alone; once it has, the sweep ends it as interrupted.
        #expect(try await store.interruptExpiredLeases(reason: "swept").isEmpty, "its lease has 30 s to go")
        let sqlite = try #require(store.base as? SQLiteStore)
        try await sqlite.database.write { db in
            try db.execute(
                sql: "UPDATE lease SET expires_at = '2000-01-01 00:00:00.000' WHERE deployment_id = ?",
                arguments: [second.id])
        }
        let swept = try await store.interruptExpiredLeases(reason: "swept")
        #expect(swept.map(\.id) == [second.id] && swept.first?.status == .interrupted)
        #expect(try await store.deployment(second.id)?.status == .interrupted)
    }

    @Test func aSwitchThatCannotBeRecordedIsSwitchedBack() async throws {
        let (fixture, store) = try await Self.withFaultyStore(
            yaml: "build:\n  - true\nactivate:\n  - echo activated >> $SLIPWAY_SHARED_DIR/log\n")
        let first = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        #expect(fixture.shared("log") == ["activated"])
        // The release cannot be recorded, nor can the automatic rollback: the link goes back to what the store says.
        store.fail([.saveRelease, .insertRollback])
        let second = try await fixture.deploy(try fixture.push("two", files: ["a": "2"]))
        #expect(second.status == .failed)
        #expect(second.error?.contains("current is back at release \(first.id)") == true, "\(second.error ?? "")")
        #expect(fixture.layout.currentRelease() == first.id)
        #expect(try await fixture.store.appState("hello").liveRelease == first.id)
        #expect(!fixture.layout.hasRelease(second.id))
        #expect(fixture.shared("log") == ["activated"], "the new release's activate steps never ran")

        // When only the release cannot be recorded, the automatic rollback runs as after a failed health check.
        store.fail([.saveRelease])
        let third = try await fixture.deploy(try fixture.push("three", files: ["a": "3"]))
        #expect(third.status == .failed)
        #expect(third.rolledBackTo == first.id)
        #expect(fixture.layout.currentRelease() == first.id)
        store.fail([])
        let report = try await Recovery(context: fixture.context).run(pipelines: [fixture.pipeline])
        #expect(report.correctedLiveReleases.isEmpty, "the link and the store agree: \(report.summary)")
    }

    /// A release that passed its health check but cannot be recorded as succeeded is not left live behind a failed
    /// deployment: it is switched back as after a failed health check.
    @Test func aReleaseThatCannotBeRecordedAsSucceededIsSwitchedBack() async throws {
        let (fixture, store) = try await Self.withFaultyStore(yaml: "build:\n  - true\n")
        let first = try await fixture.deploy(try fixture.push("one", files: ["a": "1"]))
        store.fail([.saveSucceededRelease])
        let second = try await fixture.deploy(try fixture.push("two", files: ["a": "2"]))
        #expect(second.status == .failed)
        #expect(second.error?.contains("cannot record the release as succeeded") == true, "\(second.error ?? "")")
        #expect(second.rolledBackTo == first.id)
        #expect(fixture.layout.currentRelease() == first.id)
        #expect(try await fixture.store.appState("hello").liveRelease == first.id)
        #expect(!fixture.layout.hasRelease(second.id))
    }
}
