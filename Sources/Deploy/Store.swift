import Foundation
import GRDB
import Pipeline

/// The daemon's record of everything: SQLite in WAL mode at `<state>/slipway.sqlite`, through GRDB.
///
/// Deployment ids come from an AUTOINCREMENT key, so they are unique across apps and never reused, even after the
/// newest rows are deleted.
public final class Store: Sendable {
    let database: DatabasePool
    let deliveries = Locked(DeliveryLedger())

    /// Opens (creating and migrating as needed) the store at `path`.
    public init(path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // In WAL mode, NORMAL survives any crash of the process (a kill -9 loses nothing) and skips an fsync per
            // commit. Only a power cut can lose the last commits; start-up recovery then believes the `current`
            // link, which is what says which release is live.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        database = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(database)
        try loadRecentDeliveries()
    }

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
        return migrator
    }
}

// MARK: - Deployments

extension Store {
    /// Inserts a queued deployment. Every deployment of the same app still queued becomes `superseded` by it, in
    /// the same transaction, except `sparing`: one the queue has already started, which the store may not yet
    /// show as running. Returns the new deployment and the ones it superseded.
    public func enqueue(_ deployment: Deployment, sparing: Int64? = nil) async throws
        -> (Deployment, superseded: [Deployment])
    {
        try await database.write { db in
            var inserted = deployment
            inserted.status = .queued
            try inserted.insert(db)
            let now = Date()
            var superseded = try Deployment
                .filter(Column("app") == deployment.app && Column("status") == DeploymentStatus.queued.rawValue)
                .filter(Column("id") < inserted.id! && Column("id") != (sparing ?? -1))
                .fetchAll(db)
            for index in superseded.indices {
                superseded[index].status = .superseded
                superseded[index].supersededBy = inserted.id
                superseded[index].finishedAt = now
                try superseded[index].update(db)
            }
            return (inserted, superseded)
        }
    }

    /// Inserts many deployments in one transaction (for importing history and for benchmarks).
    public func insert(contentsOf deployments: [Deployment]) async throws -> [Deployment] {
        try await database.write { db in
            try deployments.map { deployment in
                var inserted = deployment
                try inserted.insert(db)
                return inserted
            }
        }
    }

    /// Inserts a deployment exactly as given, bypassing the queue (used for automatic rollbacks).
    public func insert(_ deployment: Deployment) async throws -> Deployment {
        try await database.write { db in
            var inserted = deployment
            try inserted.insert(db)
            return inserted
        }
    }

    public func save(_ deployment: Deployment) async throws {
        try await database.write { db in try deployment.update(db) }
    }

    public func deployment(_ id: Int64) async throws -> Deployment? {
        try await database.read { db in try Deployment.fetchOne(db, key: id) }
    }

    /// An app's deployments, newest first, `limit` at most, older than `before` when given (keyset paging).
    public func deployments(app: String, limit: Int = 50, before: Int64? = nil) async throws -> [Deployment] {
        try await database.read { db in
            var request = Deployment.filter(Column("app") == app)
            if let before { request = request.filter(Column("id") < before) }
            return try request.order(Column("id").desc).limit(limit).fetchAll(db)
        }
    }

    public func deployments(status: DeploymentStatus) async throws -> [Deployment] {
        try await database.read { db in
            try Deployment.filter(Column("status") == status.rawValue).order(Column("id")).fetchAll(db)
        }
    }

    /// The newest deployment of every app, in one query.
    public func latestDeployments() async throws -> [String: Deployment] {
        try await database.read { db in
            let rows = try Deployment.fetchAll(
                db, sql: "SELECT * FROM deployment WHERE id IN (SELECT MAX(id) FROM deployment GROUP BY app)")
            return Dictionary(rows.map { ($0.app, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// How many deployments wait in each app's queue.
    public func queuedCounts() async throws -> [String: Int] {
        try await database.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT app, COUNT(*) AS n FROM deployment WHERE status = 'queued' GROUP BY app")
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["app"] as String, $0["n"] as Int) })
        }
    }
}

// MARK: - Steps

extension Store {
    public func insert(_ step: StepRecord) async throws -> StepRecord {
        try await database.write { db in
            var inserted = step
            try inserted.insert(db)
            return inserted
        }
    }

    public func save(_ step: StepRecord) async throws {
        try await database.write { db in try step.update(db) }
    }

    public func steps(deployment id: Int64) async throws -> [StepRecord] {
        try await database.read { db in
            try StepRecord.filter(Column("deployment_id") == id).order(Column("position"), Column("id")).fetchAll(db)
        }
    }

    /// Steps still marked running, with the process groups they had.
    public func runningSteps() async throws -> [StepRecord] {
        try await database.read { db in
            try StepRecord.filter(Column("status") == StepStatus.running.rawValue).fetchAll(db)
        }
    }
}

// MARK: - Releases and app state

extension Store {
    public func save(_ release: Release) async throws {
        try await database.write { db in try release.save(db) }
    }

    public func release(_ id: Int64) async throws -> Release? {
        try await database.read { db in try Release.fetchOne(db, key: id) }
    }

    /// An app's releases, newest first; only those still on disk unless `includeRemoved`.
    public func releases(app: String, includeRemoved: Bool = false) async throws -> [Release] {
        try await database.read { db in
            var request = Release.filter(Column("app") == app)
            if !includeRemoved { request = request.filter(Column("removed_at") == nil) }
            return try request.order(Column("id").desc).fetchAll(db)
        }
    }

    public func releases(ids: [Int64]) async throws -> [Int64: Release] {
        try await database.read { db in
            let rows = try Release.fetchAll(db, keys: ids)
            return Dictionary(uniqueKeysWithValues: rows.map { ($0.id, $0) })
        }
    }

    public func appState(_ app: String) async throws -> AppState {
        try await database.read { db in try AppState.fetchOne(db, key: app) } ?? AppState(app: app)
    }

    public func appStates() async throws -> [String: AppState] {
        try await database.read { db in
            Dictionary(uniqueKeysWithValues: try AppState.fetchAll(db).map { ($0.app, $0) })
        }
    }

    /// Changes one app's state in a transaction.
    @discardableResult
    public func updateAppState(_ app: String, _ change: @Sendable @escaping (inout AppState) -> Void) async throws
        -> AppState
    {
        try await database.write { db in
            var state = try AppState.fetchOne(db, key: app) ?? AppState(app: app)
            change(&state)
            try state.save(db)
            return state
        }
    }
}

// MARK: - Webhook deliveries

extension Store {
    /// Records a delivery id; returns false when it was seen before, so the delivery can be dropped.
    ///
    /// The check is made in memory, against every id recorded or loaded since start-up, and new ids are written to
    /// SQLite in batches a few milliseconds later: a webhook flood is then one transaction per batch, not one
    /// per delivery. A crash can lose the last batch; a forge's redelivery of one of those would then deploy
    /// nothing new anyway, because the watcher has already seen its head.
    public func recordDelivery(id: String, provider: String) -> Bool {
        let (isNew, startFlush) = deliveries.withLock { ledger -> (Bool, Bool) in
            guard ledger.seen.insert(id).inserted else { return (false, false) }
            if let forgotten = ledger.remember(id) { ledger.seen.remove(forgotten) }
            ledger.pending.append((id, provider, Date()))
            defer { ledger.flushing = true }
            return (true, !ledger.flushing)
        }
        if startFlush {
            Task.detached { [self] in
                try? await Task.sleep(for: .milliseconds(20))
                await flushDeliveries()
            }
        }
        return isNew
    }

    /// Writes the delivery ids recorded since the last flush, in one transaction, and returns once every id
    /// recorded before the call is written (the daemon calls it on shutdown).
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
            try? await database.write { _ in }
            return
        }
        do {
            try await database.write { db in
                let insert = try db.cachedStatement(
                    sql: "INSERT OR IGNORE INTO webhook_delivery (id, provider, received_at) VALUES (?, ?, ?)")
                for (id, provider, date) in batch {
                    try insert.execute(arguments: [id, provider, StoredTime.text(date)])
                }
            }
        } catch {
            // The ids stay known in memory; only a restart would forget them.
        }
    }

    /// Loads the most recent delivery ids into memory, once, at start-up.
    func loadRecentDeliveries() throws {
        let ids = try database.read { db in
            try String.fetchAll(
                db, sql: "SELECT id FROM webhook_delivery ORDER BY received_at DESC LIMIT ?",
                arguments: [DeliveryLedger.memoryLimit])
        }
        deliveries.withLock { ledger in
            ledger = DeliveryLedger()
            for id in ids.reversed() { _ = ledger.remember(id) }
            ledger.seen = Set(ids)
        }
    }

    /// Forgets delivery ids older than `age`; forges do not redeliver after a few days.
    public func pruneDeliveries(olderThan age: TimeInterval) async throws {
        await flushDeliveries()
        let forgotten = try await database.write { db in
            try db.execute(
                sql: "DELETE FROM webhook_delivery WHERE received_at < ?",
                arguments: [StoredTime.text(Date().addingTimeInterval(-age))])
            return db.changesCount
        }
        // The ids in memory were loaded when the store opened; they change only if some were forgotten.
        if forgotten > 0 { try loadRecentDeliveries() }
    }
}

/// The webhook delivery ids the daemon knows, in memory, and those not yet written.
struct DeliveryLedger: Sendable {
    /// How many recent ids are kept in memory; forges redeliver within hours, not after this many deliveries.
    static let memoryLimit = 50_000
    var seen: Set<String> = []
    /// The remembered ids in arrival order, as a ring: the oldest is overwritten when it is full.
    private var ring: [String] = []
    private var next = 0
    var pending: [(String, String, Date)] = []
    var flushing = false

    /// Remembers `id`; returns the id it pushed out of memory, if the ring was full.
    mutating func remember(_ id: String) -> String? {
        if ring.count < Self.memoryLimit {
            ring.append(id)
            return nil
        }
        let forgotten = ring[next]
        ring[next] = id
        next = (next + 1) % Self.memoryLimit
        return forgotten
    }
}
