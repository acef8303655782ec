import Foundation
import GRDB
import Pipeline
import SlipwayAPI

/// The embedded store: SQLite in WAL mode at `<state>/slipway.sqlite`, through GRDB.
///
/// Deployment ids come from an AUTOINCREMENT key, so they are unique across apps and never reused, even after the
/// newest rows are deleted.
public final class SQLiteStore: DeployStore {
    let database: DatabasePool
    private let deliveries = Locked(DeliveryLedger())

    /// Opens (creating and migrating as needed) the store at `path`.
    public init(path: String) throws(StoreError) {
        do {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            configuration.prepareDatabase { db in
                // In WAL mode, NORMAL survives any crash of the process (a kill -9 loses nothing) and skips an
                // fsync per commit. Only a power cut can lose the last commits; start-up recovery then believes the
                // `current` link, which is what says which release is live.
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            database = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(database)
        } catch {
            throw StoreError(error)
        }
        try loadRecentDeliveries()
    }

    /// A write transaction, with SQLite's errors turned into the store's.
    private func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(StoreError) -> T {
        do {
            return try await database.write(body)
        } catch {
            throw StoreError(error)
        }
    }

    private func read<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(StoreError) -> T {
        do {
            return try await database.read(body)
        } catch {
            throw StoreError(error)
        }
    }

    // MARK: - Deployments

    public func enqueue(
        _ request: DeploymentRequest, sparing: Int64?
    ) async throws(StoreError)
        -> (deployment: Deployment, superseded: [Deployment])
    {
        try await write { db in
            let inserted = try Self.insert(request, status: .queued, into: db)
            var superseded =
                try Deployment
                .filter(Column("app") == request.app && Column("status") == DeploymentStatus.queued.rawValue)
                .filter(Column("id") < inserted.id && Column("id") != (sparing ?? -1))
                .fetchAll(db)
            let now = Date()
            for index in superseded.indices {
                superseded[index].status = .superseded
                superseded[index].supersededBy = inserted.id
                superseded[index].finishedAt = now
                try superseded[index].update(db)
            }
            return (inserted, superseded)
        }
    }

    public func insert(_ request: DeploymentRequest) async throws(StoreError) -> Deployment {
        try await write { db in try Self.insert(request, status: .queued, into: db) }
    }

    public func reserveDeploymentIDs(above id: Int64) async throws(StoreError) {
        try await write { db in
            // AUTOINCREMENT keys start above sqlite_sequence's value for the table (and above its largest row).
            try db.execute(
                sql: "UPDATE sqlite_sequence SET seq = ? WHERE name = 'deployment' AND seq < ?", arguments: [id, id])
            let known = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_sequence WHERE name = 'deployment'")
            if known == 0 {
                try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('deployment', ?)", arguments: [id])
            }
        }
    }

    public func importHistory(_ deployments: [Deployment]) async throws(StoreError) -> [Deployment] {
        try await write { db in
            try deployments.map { deployment in
                let request = DeploymentRequest(
                    app: deployment.app, kind: deployment.kind, trigger: deployment.trigger, ref: deployment.ref,
                    commit: deployment.commit, targetRelease: deployment.targetRelease)
                var imported = deployment
                imported.id = try Self.insert(request, status: deployment.status, into: db).id
                try imported.update(db)
                return imported
            }
        }
    }

    private static func insert(
        _ request: DeploymentRequest, status: DeploymentStatus, into db: Database
    ) throws
        -> Deployment
    {
        let created = Date()
        try db.execute(
            sql: """
                INSERT INTO deployment (app, kind, "trigger", ref, "commit", message, author, status, phase, created_at,
                    target_release, gated_from)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                request.app, request.kind.rawValue, request.trigger.rawValue, request.ref, request.commit,
                request.message, request.author, status.rawValue, request.phase.rawValue, UTCTime.sqlText(created),
                request.targetRelease, request.gatedFrom,
            ])
        var deployment = Deployment(
            id: db.lastInsertedRowID, app: request.app, kind: request.kind, trigger: request.trigger, ref: request.ref,
            commit: request.commit, message: request.message, author: request.author, status: status,
            phase: request.phase, createdAt: created, targetRelease: request.targetRelease)
        deployment.gatedFrom = request.gatedFrom
        // What was written is what a read gives back: times are kept to the millisecond.
        deployment.createdAt = UTCTime.parse(UTCTime.sqlText(created)) ?? created
        return deployment
    }

    public func save(_ deployment: Deployment) async throws(StoreError) {
        try await write { db in try deployment.update(db) }
    }

    public func deployment(_ id: Int64) async throws(StoreError) -> Deployment? {
        try await read { db in try Deployment.fetchOne(db, key: id) }
    }

    public func deployments(app: String, limit: Int, before: Int64?) async throws(StoreError) -> [Deployment] {
        try await read { db in
            var request = Deployment.filter(Column("app") == app)
            if let before { request = request.filter(Column("id") < before) }
            return try request.order(Column("id").desc).limit(limit).fetchAll(db)
        }
    }

    public func deployments(status: DeploymentStatus) async throws(StoreError) -> [Deployment] {
        try await read { db in
            try Deployment.filter(Column("status") == status.rawValue).order(Column("id")).fetchAll(db)
        }
    }

    public func latestDeployments() async throws(StoreError) -> [String: Deployment] {
        try await read { db in
            let rows = try Deployment.fetchAll(
                db, sql: "SELECT * FROM deployment WHERE id IN (SELECT MAX(id) FROM deployment GROUP BY app)")
            return Dictionary(rows.map { ($0.app, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    public func latestOutcomes() async throws(StoreError) -> [String: Deployment] {
        try await read { db in
            let rows = try Deployment.fetchAll(
                db,
                sql: """
                    SELECT * FROM deployment WHERE id IN (
                        SELECT MAX(id) FROM deployment
                        WHERE status IN ('succeeded', 'failed', 'interrupted') AND "trigger" != 'auto_rollback'
                        GROUP BY app)
                    """)
            return Dictionary(rows.map { ($0.app, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    public func queuedCounts() async throws(StoreError) -> [String: Int] {
        try await read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT app, COUNT(*) AS n FROM deployment WHERE status = 'queued' GROUP BY app")
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["app"] as String, $0["n"] as Int) })
        }
    }

    // MARK: - Steps

    public func insertSteps(_ plans: [StepPlan]) async throws(StoreError) -> [StepRecord] {
        try await write { db in
            try plans.map { plan in
                try db.execute(
                    sql: "INSERT INTO step (deployment_id, position, phase, name, status) VALUES (?, ?, ?, ?, ?)",
                    arguments: [
                        plan.deploymentId, plan.position, plan.phase.rawValue, plan.name, StepStatus.pending.rawValue,
                    ])
                return StepRecord(
                    id: db.lastInsertedRowID, deploymentId: plan.deploymentId, position: plan.position,
                    phase: plan.phase, name: plan.name)
            }
        }
    }

    public func save(_ step: StepRecord) async throws(StoreError) {
        try await write { db in try step.update(db) }
    }

    public func steps(deployment id: Int64) async throws(StoreError) -> [StepRecord] {
        try await read { db in
            try StepRecord.filter(Column("deployment_id") == id).order(Column("position"), Column("id")).fetchAll(db)
        }
    }

    public func runningSteps() async throws(StoreError) -> [StepRecord] {
        try await read { db in
            try StepRecord.filter(Column("status") == StepStatus.running.rawValue).fetchAll(db)
        }
    }

    public func setProcessGroup(step id: Int64, group: Int32) async throws(StoreError) {
        try await write { db in
            try db.execute(
                sql: "UPDATE step SET process_group = ? WHERE id = ? AND status = 'running'", arguments: [group, id])
        }
    }

    // MARK: - Releases and app state

    public func save(_ release: Release) async throws(StoreError) {
        try await write { db in try release.save(db) }
    }

    public func release(_ id: Int64) async throws(StoreError) -> Release? {
        try await read { db in try Release.fetchOne(db, key: id) }
    }

    public func releases(app: String, includeRemoved: Bool) async throws(StoreError) -> [Release] {
        try await read { db in
            var request = Release.filter(Column("app") == app)
            if !includeRemoved { request = request.filter(Column("removed_at") == nil) }
            return try request.order(Column("id").desc).fetchAll(db)
        }
    }

    public func releases(ids: [Int64]) async throws(StoreError) -> [Int64: Release] {
        try await read { db in
            let rows = try Release.fetchAll(db, keys: ids)
            return Dictionary(uniqueKeysWithValues: rows.map { ($0.id, $0) })
        }
    }

    public func appState(_ app: String) async throws(StoreError) -> AppState {
        try await read { db in try AppState.fetchOne(db, key: app) } ?? AppState(app: app)
    }

    public func appStates() async throws(StoreError) -> [String: AppState] {
        try await read { db in
            Dictionary(uniqueKeysWithValues: try AppState.fetchAll(db).map { ($0.app, $0) })
        }
    }

    @discardableResult
    public func updateAppState(
        _ app: String, _ change: @Sendable @escaping (inout AppState) -> Void
    )
        async throws(StoreError) -> AppState
    {
        try await write { db in
            var state = try AppState.fetchOne(db, key: app) ?? AppState(app: app)
            change(&state)
            try state.save(db)
            return state
        }
    }

    // MARK: - Webhook deliveries

    /// The check is made in memory, against every id recorded or loaded since start-up, and new ids are written to
    /// SQLite in batches a few milliseconds later: a webhook flood is then one transaction per batch, not one per
    /// delivery. A crash can lose the last batch; a forge's redelivery of one of those then deploys nothing new,
    /// because the intake has already seen its head.
    public func recordDelivery(id: String, provider: String) async throws(StoreError) -> Bool {
        let (isNew, startFlush) = deliveries.withLock { ledger -> (Bool, Bool) in
            guard ledger.record(id, provider: provider) else { return (false, false) }
            defer { ledger.flushing = true }
            return (true, !ledger.flushing)
        }
        if startFlush {
            // Deliberately unstructured: the batch is written after the delivery has been answered.
            Task.detached { [self] in
                try? await Task.sleep(for: .milliseconds(20))
                await flushDeliveries()
            }
        }
        return isNew
    }

    public func flushDeliveries() async {
        let batch = deliveries.withLock { ledger in
            defer {
                ledger.pending.removeAll()
                ledger.flushing = false
            }
            return ledger.pending
        }
        guard !batch.isEmpty else {
            // Another flush may be writing what was recorded before us; writes are serialized, so wait for it.
            _ = try? await write { _ in }
            return
        }
        // A failed write leaves the ids known in memory; only a restart would forget them.
        _ = try? await write { db in
            let insert = try db.cachedStatement(
                sql: "INSERT OR IGNORE INTO webhook_delivery (id, provider, received_at) VALUES (?, ?, ?)")
            for entry in batch {
                try insert.execute(arguments: [entry.id, entry.provider, UTCTime.sqlText(entry.received)])
            }
        }
    }

    /// Loads the most recent delivery ids into memory, once, at start-up.
    private func loadRecentDeliveries() throws(StoreError) {
        let ids: [String]
        do {
            ids = try database.read { db in
                try String.fetchAll(
                    db, sql: "SELECT id FROM webhook_delivery ORDER BY received_at DESC LIMIT ?",
                    arguments: [DeliveryLedger.memoryLimit])
            }
        } catch {
            throw StoreError(error)
        }
        deliveries.withLock { $0.load(newestFirst: ids) }
    }

    public func pruneDeliveries(olderThan age: TimeInterval) async throws(StoreError) {
        await flushDeliveries()
        let cutoff = UTCTime.sqlText(Date().addingTimeInterval(-age))
        let forgotten = try await write { db in
            try db.execute(sql: "DELETE FROM webhook_delivery WHERE received_at < ?", arguments: [cutoff])
            return db.changesCount
        }
        // The ids in memory were loaded when the store opened; they change only if some were forgotten.
        if forgotten > 0 { try loadRecentDeliveries() }
    }

    // MARK: - Leases

    public func takeLease(
        deployment id: Int64, owner: String, duration: TimeInterval
    ) async throws(StoreError) -> Lease? {
        let now = Date()
        return try await write { db in
            let held = try Row.fetchOne(
                db, sql: "SELECT owner, expires_at FROM lease WHERE deployment_id = ?", arguments: [id])
            if let held, held["owner"] as String != owner,
                (UTCTime.parse(held["expires_at"]) ?? .distantPast) > now
            {
                return nil
            }
            // AUTOINCREMENT never gives a number twice, even once the rows below it are gone.
            try db.execute(sql: "INSERT INTO lease_fence DEFAULT VALUES")
            let fence = db.lastInsertedRowID
            try db.execute(sql: "DELETE FROM lease_fence WHERE id < ?", arguments: [fence])
            try db.execute(
                sql: """
                    INSERT INTO lease (deployment_id, owner, fence, expires_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (deployment_id) DO UPDATE SET owner = excluded.owner, fence = excluded.fence,
                        expires_at = excluded.expires_at
                    """,
                arguments: [id, owner, fence, UTCTime.sqlText(now.addingTimeInterval(duration))])
            return Lease(deploymentID: id, owner: owner, fence: fence)
        }
    }

    public func renewLease(_ lease: Lease, duration: TimeInterval) async throws(StoreError) -> Bool {
        let now = Date()
        return try await write { db in
            try db.execute(
                sql: "UPDATE lease SET expires_at = ? WHERE deployment_id = ? AND fence = ? AND expires_at > ?",
                arguments: [
                    UTCTime.sqlText(now.addingTimeInterval(duration)), lease.deploymentID, lease.fence,
                    UTCTime.sqlText(now),
                ])
            return db.changesCount == 1
        }
    }

    public func holdsLease(_ lease: Lease, margin: TimeInterval) async throws(StoreError) -> Bool {
        let until = UTCTime.sqlText(Date().addingTimeInterval(margin))
        return try await read { db in
            try Bool.fetchOne(
                db, sql: "SELECT 1 FROM lease WHERE deployment_id = ? AND fence = ? AND expires_at > ?",
                arguments: [lease.deploymentID, lease.fence, until]) ?? false
        }
    }

    public func leaseHolder(deployment id: Int64) async throws(StoreError) -> String? {
        let now = UTCTime.sqlText(Date())
        return try await read { db in
            try String.fetchOne(
                db, sql: "SELECT owner FROM lease WHERE deployment_id = ? AND expires_at > ?", arguments: [id, now])
        }
    }

    public func interruptExpiredLeases(reason: String) async throws(StoreError) -> [Deployment] {
        let nowText = UTCTime.sqlText(Date())
        let now = UTCTime.parse(nowText) ?? Date()  // as it reads back
        return try await write { db in
            var expired = try Deployment.fetchAll(
                db,
                sql: """
                    SELECT deployment.* FROM deployment JOIN lease ON lease.deployment_id = deployment.id
                    WHERE deployment.status = 'running' AND lease.expires_at <= ?
                    """, arguments: [nowText])
            for index in expired.indices {
                expired[index].status = .interrupted
                expired[index].error = reason
                expired[index].finishedAt = now
                try expired[index].update(db)
            }
            return expired
        }
    }

    // MARK: - Nodes

    public func heartbeat(node name: String, version: String, startedAt: Date) async throws(StoreError) {
        let now = UTCTime.sqlText(Date())
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO node (name, version, started_at, last_seen, stopped_at) VALUES (?, ?, ?, ?, NULL)
                    ON CONFLICT (name) DO UPDATE SET version = excluded.version, started_at = excluded.started_at,
                        last_seen = excluded.last_seen, stopped_at = NULL
                    """, arguments: [name, version, UTCTime.sqlText(startedAt), now])
        }
    }

    public func nodeStopped(_ name: String) async throws(StoreError) {
        let now = UTCTime.sqlText(Date())
        try await write { db in
            try db.execute(sql: "UPDATE node SET stopped_at = ? WHERE name = ?", arguments: [now, name])
        }
    }

    public func nodes(downAfter: TimeInterval) async throws(StoreError) -> [NodeRecord] {
        let now = Date()
        return try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT name, version, started_at, last_seen, stopped_at FROM node ORDER BY name"
            ).map { row in
                let lastSeen = UTCTime.parse(row["last_seen"]) ?? .distantPast
                let stopped: String? = row["stopped_at"]
                return NodeRecord(
                    name: row["name"], version: row["version"],
                    startedAt: UTCTime.parse(row["started_at"]) ?? .distantPast, lastSeen: lastSeen,
                    up: stopped == nil && now.timeIntervalSince(lastSeen) < downAfter)
            }
        }
    }
}

extension SQLiteStore: CustomStringConvertible {
    public var description: String { "SQLiteStore(\(database.path))" }
}

extension StoreError {
    /// SQLite's and GRDB's errors, in the store's words.
    init(_ error: any Error) {
        guard let error = error as? DatabaseError else {
            self = .failed("\(error)")
            return
        }
        switch error.resultCode.primaryResultCode {
        case .SQLITE_FULL: self = .full
        case .SQLITE_BUSY, .SQLITE_LOCKED: self = .unavailable("the database is locked by another process")
        case .SQLITE_CANTOPEN: self = .unavailable("the database file cannot be opened")
        case .SQLITE_READONLY: self = .unavailable("the database file is read-only")
        case .SQLITE_IOERR: self = .failed("a disk read or write failed")
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: self = .failed("the database file is damaged")
        default: self = .failed(error.message ?? "SQLite error \(error.resultCode.rawValue)")
        }
    }
}

extension SQLiteStore {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: deployments, steps, releases, deliveries") { db in
            try db.create(table: "deployment") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("app", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("trigger", .text).notNull()
                t.column("ref", .text).notNull()
                t.column("commit", .text).notNull()
                t.column("message", .text).notNull()
                t.column("author", .text).notNull()
                t.column("status", .text).notNull()
                t.column("phase", .text).notNull()
                t.column("created_at", .datetime).notNull()
                t.column("started_at", .datetime)
                t.column("finished_at", .datetime)
                t.column("duration_ms", .integer)
                t.column("superseded_by", .integer)
                t.column("rolled_back_to", .integer)
                t.column("error", .text)
                t.column("target_release", .integer)
            }
            // Keyset paging per app, newest first, and the "last deployment of each app" query.
            try db.create(index: "deployment_app_id", on: "deployment", columns: ["app", "id"])
            // Start-up recovery and the queue look deployments up by status.
            try db.create(index: "deployment_status", on: "deployment", columns: ["status"])

            try db.create(table: "step") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("deployment_id", .integer).notNull().references("deployment", onDelete: .cascade)
                t.column("position", .integer).notNull()
                t.column("phase", .text).notNull()
                t.column("name", .text).notNull()
                t.column("status", .text).notNull()
                t.column("exit_code", .integer)
                t.column("started_at", .datetime)
                t.column("finished_at", .datetime)
                t.column("duration_ms", .integer)
                t.column("process_group", .integer)
            }
            try db.create(index: "step_deployment", on: "step", columns: ["deployment_id", "position"])

            try db.create(table: "release") { t in
                t.primaryKey("id", .integer)
                t.column("app", .text).notNull()
                t.column("commit", .text).notNull()
                t.column("message", .text).notNull()
                t.column("author", .text).notNull()
                t.column("created_at", .datetime).notNull()
                t.column("succeeded", .boolean).notNull()
                t.column("removed_at", .datetime)
            }
            try db.create(index: "release_app_id", on: "release", columns: ["app", "id"])

            try db.create(table: "app_state") { t in
                t.primaryKey("app", .text)
                t.column("live_release", .integer)
                t.column("last_seen_head", .text)
            }

            try db.create(table: "webhook_delivery") { t in
                t.primaryKey("id", .text)
                t.column("provider", .text).notNull()
                t.column("received_at", .datetime).notNull()
            }
            try db.create(index: "webhook_delivery_received", on: "webhook_delivery", columns: ["received_at"])
        }
        migrator.registerMigration("v2: gated pushes") { db in
            try db.alter(table: "deployment") { t in t.add(column: "gated_from", .text) }
        }
        migrator.registerMigration("v3: nodes") { db in
            try db.create(table: "node") { t in
                t.primaryKey("name", .text)
                t.column("version", .text).notNull()
                t.column("started_at", .datetime).notNull()
                t.column("last_seen", .datetime).notNull()
                t.column("stopped_at", .datetime)
            }
        }
        migrator.registerMigration("v4: leases") { db in
            try db.create(table: "lease") { t in
                t.primaryKey("deployment_id", .integer).references("deployment", onDelete: .cascade)
                t.column("owner", .text).notNull()
                t.column("fence", .integer).notNull()
                t.column("expires_at", .datetime).notNull()
            }
            try db.create(table: "lease_fence") { t in t.autoIncrementedPrimaryKey("id") }
        }
        return migrator
    }
}
