import Foundation
import GRDB
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

/// What the embedded store does beyond the contract: SQLite's file, its text timestamps, its indexes.
@Suite struct SQLiteStoreTests {
    let scratch = ScratchDirectory("slipway-store")

    @Test func theStoreIsSQLiteInWALMode() throws {
        _ = try SQLiteStore(path: scratch("slipway.sqlite"))
        let queue = try DatabaseQueue(path: scratch("slipway.sqlite"))
        let mode = try queue.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }

    @Test func timestampsAreStoredAsUTCTextAndReadBackToTheMillisecond() async throws {
        let store = try SQLiteStore(path: scratch("slipway.sqlite"))
        let created = Date(timeIntervalSince1970: 1_795_600_800.123)  // 2026-11-25 10:00:00.123 UTC
        var changed = try await store.insert(DeploymentRequest(app: "a", trigger: .push, ref: "main", commit: "1"))
        changed.createdAt = created
        try await store.save(changed)
        let inserted = changed
        let queue = try DatabaseQueue(path: scratch("slipway.sqlite"))
        let text = try await queue.read { db in
            try String.fetchOne(db, sql: "SELECT created_at FROM deployment WHERE id = ?", arguments: [inserted.id])
        }
        #expect(text == "2026-11-25 10:00:00.123")
        let loaded = try #require(try await store.deployment(inserted.id))
        #expect(abs(loaded.createdAt.timeIntervalSince(created)) < 0.001)

        // Rows written in other shapes SQLite and GRDB understand still load: ISO 8601, no fraction, a number.
        for (stored, expected) in [
            ("'2026-11-25T10:00:00Z'", 1_795_600_800.0), ("'2026-11-25 10:00'", 1_795_600_800.0),
            ("1795600800.5", 1_795_600_800.5),
        ] {
            try await queue.write { db in
                try db.execute(
                    sql: "UPDATE deployment SET created_at = \(stored) WHERE id = ?", arguments: [inserted.id])
            }
            let reloaded = try #require(try await store.deployment(inserted.id))
            #expect(reloaded.createdAt.timeIntervalSince1970 == expected, "\(stored)")
        }
    }

    /// With 100,000 deployments the API's queries must use the indexes, not scan the table.
    @Test func theAPIQueriesUseTheirIndexesAtScale() async throws {
        let store = try SQLiteStore(path: scratch("slipway.sqlite"))
        let batch = (0..<100_000).map { index in
            Deployment(
                id: 0, app: "app\(index % 100)", trigger: .push, ref: "main", commit: String(index), status: .succeeded,
                phase: .done)
        }
        _ = try await store.importHistory(batch)
        let page = try await store.deployments(app: "app7", limit: 50, before: 50_000)
        #expect(page.count == 50)
        #expect(page.first!.id < 50_000)
        #expect(zip(page, page.dropFirst()).allSatisfy { $0.id > $1.id })
        let latest = try await store.latestDeployments()
        #expect(latest.count == 100)
        #expect(latest["app7"]?.id == 99_908)

        let queue = try DatabaseQueue(path: scratch("slipway.sqlite"))
        func plan(_ sql: String) throws -> String {
            try queue.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(
                    separator: "; ")
            }
        }
        let paging = try plan("SELECT * FROM deployment WHERE app = 'app7' AND id < 50000 ORDER BY id DESC LIMIT 50")
        #expect(
            paging.contains("USING INDEX deployment_app_id")
                || paging.contains("USING COVERING INDEX deployment_app_id"), "\(paging)")
        #expect(!paging.contains("TEMP B-TREE"), "\(paging)")
        let newest = try plan("SELECT * FROM deployment WHERE id IN (SELECT MAX(id) FROM deployment GROUP BY app)")
        #expect(newest.contains("deployment_app_id"), "\(newest)")
        let queued = try plan("SELECT app, COUNT(*) AS n FROM deployment WHERE status = 'queued' GROUP BY app")
        #expect(queued.contains("deployment_status"), "\(queued)")
    }
}
