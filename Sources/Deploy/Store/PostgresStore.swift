import Foundation
import Logging
import NIOCore
import Pipeline
import PostgresNIO
import SlipwayAPI

/// The store on a PostgreSQL server (`--store postgres://…`), through postgres-nio: the state of record that
/// several daemons can share.
///
/// Deployment ids come from a sequence, so they are unique across apps and never reused. Unlike the embedded
/// store, which batches delivery ids in memory, a delivery id is written before `recordDelivery` returns: it is
/// durable before the delivery is answered, and known to every daemon on the same database at once.
///
/// While the database cannot be reached, every operation fails at once with `StoreError.unavailable` (the API
/// answers 503), and `PostgresLink` reconnects by itself with a growing backoff.
public final class PostgresStore: DeployStore {
    let link: PostgresLink

    /// Connects to the database at `location` and brings its schema up to date.
    public static func open(_ location: PostgresLocation, logger: Logger) async throws(StoreError) -> PostgresStore {
        let store = PostgresStore(link: PostgresLink(location: location, logger: logger))
        do {
            try await PostgresMigrations.migrate(store.link)
        } catch {
            store.close()
            throw error
        }
        return store
    }

    private init(link: PostgresLink) {
        self.link = link
    }

    /// The connection that holds this daemon's claim on the database (see `claimForOneDaemon`).
    private let claim = Locked<PostgresConnection?>(nil)

    /// Closes the connections; the store cannot be used afterwards.
    public func close() {
        link.close()
        releaseClaim()
    }

    deinit {
        releaseClaim()
    }

    /// Closes the claim's connection; the connection is kept until it is closed, as postgres-nio requires.
    private func releaseClaim() {
        let held = claim.withLock { state -> PostgresConnection? in
            let connection = state
            state = nil
            return connection
        }
        guard let connection = held else { return }
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// One daemon per database, as one per state folder, until several daemons can share one (nodes and leases):
    /// a second daemon would take the first one's running deployments for interrupted ones at its start-up, and
    /// run its queue. The claim is a session advisory lock, held by a connection of its own while the store is
    /// open; it is checked when the daemon starts.
    func claimForOneDaemon() async throws(StoreError) {
        let connection = try await link.connect()
        let logger = self.logger
        let taken: Bool
        do {
            let rows = try await connection.query(
                "SELECT pg_try_advisory_lock(\(PostgresMigrations.daemonLockKey))", logger: logger)
            taken = try await rows.decode(Bool.self).first(where: { _ in true }) ?? false
        } catch {
            try? await connection.close()
            throw StoreError(postgres: error, address: link.address)
        }
        guard taken else {
            try? await connection.close()
            throw .failed(
                "another daemon uses the database at \(link.address); for now each daemon needs a database of its own")
        }
        claim.withLock { $0 = connection }
    }

    private let logger = Logger(label: "slipway.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Runs `body` on a connection, outside a transaction.
    private func run<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws(StoreError) -> T {
        let logger = self.logger
        return try await link.withConnection { connection in try await body(connection, logger) }
    }

    /// Runs `body` in a transaction.
    private func transaction<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws(StoreError) -> T {
        let logger = self.logger
        return try await link.transaction { connection in try await body(connection, logger) }
    }

    // MARK: - Deployments

    public func enqueue(
        _ request: DeploymentRequest, sparing: Int64?
    ) async throws(StoreError)
        -> (deployment: Deployment, superseded: [Deployment])
    {
        try await transaction { connection, logger in
            // Two deliveries for the same app at once must not each miss the other's row: they take turns.
            try await connection.query(
                "SELECT pg_advisory_xact_lock(\(PostgresMigrations.appLockSpace), hashtext(\(request.app)))",
                logger: logger)
            let inserted = try await Self.insert(request, status: .queued, on: connection, logger: logger)
            let now = PostgresTime.stored(Date())
            let superseded = try await connection.query(
                """
                UPDATE deployment SET status = 'superseded', superseded_by = \(inserted.id), finished_at = \(now)
                WHERE app = \(request.app) AND status = 'queued' AND id < \(inserted.id) AND id != \(sparing ?? -1)
                RETURNING \(unescaped: Deployment.postgresColumns)
                """, logger: logger
            ).records(Deployment.init(postgres:))
            return (inserted, superseded.sorted { $0.id < $1.id })
        }
    }

    public func insert(_ request: DeploymentRequest) async throws(StoreError) -> Deployment {
        try await run { connection, logger in
            try await Self.insert(request, status: .queued, on: connection, logger: logger)
        }
    }

    /// Moves the id sequence past `id`. The table is locked meanwhile, so that no insert on another connection
    /// takes an id between the read of the sequence and its new value.
    public func reserveDeploymentIDs(above id: Int64) async throws(StoreError) {
        try await transaction { connection, logger in
            try await connection.query("LOCK TABLE deployment IN EXCLUSIVE MODE", logger: logger)
            try await connection.query(
                """
                SELECT setval('deployment_id_seq', \(id)) FROM deployment_id_seq
                WHERE \(id) > (CASE WHEN is_called THEN last_value ELSE last_value - 1 END)
                """, logger: logger)
        }
    }

    public func importHistory(_ deployments: [Deployment]) async throws(StoreError) -> [Deployment] {
        try await transaction { connection, logger in
            var imported: [Deployment] = []
            for deployment in deployments {
                let request = DeploymentRequest(
                    app: deployment.app, kind: deployment.kind, trigger: deployment.trigger, ref: deployment.ref,
                    commit: deployment.commit, targetRelease: deployment.targetRelease)
                var copy = deployment
                copy.id = try await Self.insert(request, status: deployment.status, on: connection, logger: logger).id
                try await Self.update(copy, on: connection, logger: logger)
                imported.append(copy)
            }
            return imported
        }
    }

    private static func insert(
        _ request: DeploymentRequest, status: DeploymentStatus, on connection: PostgresConnection, logger: Logger
    ) async throws -> Deployment {
        let created = PostgresTime.stored(Date())
        let rows = try await connection.query(
            """
            INSERT INTO deployment (app, kind, "trigger", ref, "commit", message, author, status, phase, created_at,
                target_release, gated_from)
            VALUES (\(request.app), \(request.kind.rawValue), \(request.trigger.rawValue), \(request.ref),
                \(request.commit), \(request.message), \(request.author), \(status.rawValue),
                \(request.phase.rawValue), \(created), \(request.targetRelease), \(request.gatedFrom))
            RETURNING id
            """, logger: logger)
        guard let id = try await rows.decode(Int64.self).first(where: { _ in true }) else {
            throw StoreError.failed("the database gave no id for a new deployment")
        }
        var deployment = Deployment(
            id: id, app: request.app, kind: request.kind, trigger: request.trigger, ref: request.ref,
            commit: request.commit, message: request.message, author: request.author, status: status,
            phase: request.phase, createdAt: created, targetRelease: request.targetRelease)
        deployment.gatedFrom = request.gatedFrom
        return deployment
    }

    public func save(_ deployment: Deployment) async throws(StoreError) {
        try await run { connection, logger in try await Self.update(deployment, on: connection, logger: logger) }
    }

    private static func update(_ deployment: Deployment, on connection: PostgresConnection, logger: Logger) async throws
    {
        try await connection.query(
            """
            UPDATE deployment SET app = \(deployment.app), kind = \(deployment.kind.rawValue),
                "trigger" = \(deployment.trigger.rawValue), ref = \(deployment.ref), "commit" = \(deployment.commit),
                message = \(deployment.message), author = \(deployment.author), status = \(deployment.status.rawValue),
                phase = \(deployment.phase.rawValue), created_at = \(PostgresTime.stored(deployment.createdAt)),
                started_at = \(deployment.startedAt.map(PostgresTime.stored)),
                finished_at = \(deployment.finishedAt.map(PostgresTime.stored)),
                duration_ms = \(deployment.durationMs.map { Int64($0) }), superseded_by = \(deployment.supersededBy),
                rolled_back_to = \(deployment.rolledBackTo), error = \(deployment.error),
                target_release = \(deployment.targetRelease), gated_from = \(deployment.gatedFrom)
            WHERE id = \(deployment.id)
            """, logger: logger)
    }

    public func deployment(_ id: Int64) async throws(StoreError) -> Deployment? {
        try await deployments(where: "id = \(id)").first
    }

    public func deployments(app: String, limit: Int, before: Int64?) async throws(StoreError) -> [Deployment] {
        try await run { connection, logger in
            try await connection.query(
                """
                SELECT \(unescaped: Deployment.postgresColumns) FROM deployment
                WHERE app = \(app) AND id < \(before ?? Int64.max) ORDER BY id DESC LIMIT \(Int64(limit))
                """, logger: logger
            ).records(Deployment.init(postgres:))
        }
    }

    public func deployments(status: DeploymentStatus) async throws(StoreError) -> [Deployment] {
        try await deployments(where: "status = \(status.rawValue) ORDER BY id")
    }

    public func latestDeployments() async throws(StoreError) -> [String: Deployment] {
        try await byApp(deployments(where: "id IN (SELECT MAX(id) FROM deployment GROUP BY app)"))
    }

    public func latestOutcomes() async throws(StoreError) -> [String: Deployment] {
        try await byApp(
            deployments(
                where: """
                    id IN (SELECT MAX(id) FROM deployment
                        WHERE status IN ('succeeded', 'failed', 'interrupted') AND "trigger" != 'auto_rollback'
                        GROUP BY app)
                    """))
    }

    public func queuedCounts() async throws(StoreError) -> [String: Int] {
        try await run { connection, logger in
            var counts: [String: Int] = [:]
            let rows = try await connection.query(
                "SELECT app, COUNT(*) FROM deployment WHERE status = 'queued' GROUP BY app", logger: logger)
            for try await (app, count) in rows.decode((String, Int64).self) { counts[app] = Int(count) }
            return counts
        }
    }

    /// The deployments a condition selects: `condition` is the query's text after WHERE, its values bound.
    private func deployments(where condition: PostgresQuery) async throws(StoreError) -> [Deployment] {
        try await run { connection, logger in
            var query: PostgresQuery = "SELECT \(unescaped: Deployment.postgresColumns) FROM deployment WHERE "
            query.sql += condition.sql
            query.binds = condition.binds
            return try await connection.query(query, logger: logger).records(Deployment.init(postgres:))
        }
    }

    private func byApp(_ deployments: [Deployment]) -> [String: Deployment] {
        Dictionary(deployments.map { ($0.app, $0) }, uniquingKeysWith: { first, _ in first })
    }

    // MARK: - Steps

    public func insertSteps(_ plans: [StepPlan]) async throws(StoreError) -> [StepRecord] {
        try await transaction { connection, logger in
            var steps: [StepRecord] = []
            for plan in plans {
                let rows = try await connection.query(
                    """
                    INSERT INTO step (deployment_id, position, phase, name, status)
                    VALUES (\(plan.deploymentId), \(Int32(plan.position)), \(plan.phase.rawValue), \(plan.name),
                        \(StepStatus.pending.rawValue))
                    RETURNING id
                    """, logger: logger)
                guard let id = try await rows.decode(Int64.self).first(where: { _ in true }) else {
                    throw StoreError.failed("the database gave no id for a new step")
                }
                steps.append(
                    StepRecord(
                        id: id, deploymentId: plan.deploymentId, position: plan.position, phase: plan.phase,
                        name: plan.name))
            }
            return steps
        }
    }

    public func save(_ step: StepRecord) async throws(StoreError) {
        try await run { connection, logger in
            _ = try await connection.query(
                """
                UPDATE step SET deployment_id = \(step.deploymentId), position = \(Int32(step.position)),
                    phase = \(step.phase.rawValue), name = \(step.name), status = \(step.status.rawValue),
                    exit_code = \(step.exitCode), started_at = \(step.startedAt.map(PostgresTime.stored)),
                    finished_at = \(step.finishedAt.map(PostgresTime.stored)),
                    duration_ms = \(step.durationMs.map { Int64($0) }), process_group = \(step.processGroup)
                WHERE id = \(step.id)
                """, logger: logger)
        }
    }

    public func steps(deployment id: Int64) async throws(StoreError) -> [StepRecord] {
        try await steps(where: "deployment_id = \(id) ORDER BY position, id")
    }

    public func runningSteps() async throws(StoreError) -> [StepRecord] {
        try await steps(where: "status = 'running' ORDER BY id")
    }

    private func steps(where condition: PostgresQuery) async throws(StoreError) -> [StepRecord] {
        try await run { connection, logger in
            var query: PostgresQuery = "SELECT \(unescaped: StepRecord.postgresColumns) FROM step WHERE "
            query.sql += condition.sql
            query.binds = condition.binds
            return try await connection.query(query, logger: logger).records(StepRecord.init(postgres:))
        }
    }

    public func setProcessGroup(step id: Int64, group: Int32) async throws(StoreError) {
        try await run { connection, logger in
            _ = try await connection.query(
                "UPDATE step SET process_group = \(group) WHERE id = \(id) AND status = 'running'", logger: logger)
        }
    }

    // MARK: - Releases and app state

    public func save(_ release: Release) async throws(StoreError) {
        try await run { connection, logger in
            let created = PostgresTime.stored(release.createdAt)
            let removed = release.removedAt.map(PostgresTime.stored)
            try await connection.query(
                """
                INSERT INTO release (id, app, "commit", message, author, created_at, succeeded, removed_at)
                VALUES (\(release.id), \(release.app), \(release.commit), \(release.message), \(release.author),
                    \(created), \(release.succeeded), \(removed))
                ON CONFLICT (id) DO UPDATE SET app = excluded.app, "commit" = excluded."commit",
                    message = excluded.message, author = excluded.author, created_at = excluded.created_at,
                    succeeded = excluded.succeeded, removed_at = excluded.removed_at
                """, logger: logger)
        }
    }

    public func release(_ id: Int64) async throws(StoreError) -> Release? {
        try await releases(where: "id = \(id)").first
    }

    public func releases(app: String, includeRemoved: Bool) async throws(StoreError) -> [Release] {
        try await releases(
            where: "app = \(app) AND (\(includeRemoved) OR removed_at IS NULL) ORDER BY id DESC")
    }

    public func releases(ids: [Int64]) async throws(StoreError) -> [Int64: Release] {
        let rows = try await releases(where: "id = ANY(\(ids))")
        return Dictionary(uniqueKeysWithValues: rows.map { ($0.id, $0) })
    }

    private func releases(where condition: PostgresQuery) async throws(StoreError) -> [Release] {
        try await run { connection, logger in
            var query: PostgresQuery = "SELECT \(unescaped: Release.postgresColumns) FROM release WHERE "
            query.sql += condition.sql
            query.binds = condition.binds
            return try await connection.query(query, logger: logger).records(Release.init(postgres:))
        }
    }

    public func appState(_ app: String) async throws(StoreError) -> AppState {
        try await run { connection, logger in
            try await connection.query(
                "SELECT app, live_release, last_seen_head FROM app_state WHERE app = \(app)", logger: logger
            ).records(AppState.init(postgres:)).first
        } ?? AppState(app: app)
    }

    public func appStates() async throws(StoreError) -> [String: AppState] {
        let states = try await run { connection, logger in
            try await connection.query("SELECT app, live_release, last_seen_head FROM app_state", logger: logger)
                .records(AppState.init(postgres:))
        }
        return Dictionary(uniqueKeysWithValues: states.map { ($0.app, $0) })
    }

    /// The app's row is created if missing and then locked, so that changes made at once take turns.
    @discardableResult
    public func updateAppState(
        _ app: String, _ change: @Sendable @escaping (inout AppState) -> Void
    )
        async throws(StoreError) -> AppState
    {
        try await transaction { connection, logger in
            try await connection.query(
                "INSERT INTO app_state (app) VALUES (\(app)) ON CONFLICT (app) DO NOTHING", logger: logger)
            let rows = try await connection.query(
                "SELECT app, live_release, last_seen_head FROM app_state WHERE app = \(app) FOR UPDATE",
                logger: logger
            ).records(AppState.init(postgres:))
            var state = rows.first ?? AppState(app: app)
            change(&state)
            try await connection.query(
                """
                UPDATE app_state SET live_release = \(state.liveRelease), last_seen_head = \(state.lastSeenHead)
                WHERE app = \(app)
                """, logger: logger)
            return state
        }
    }

    // MARK: - Webhook deliveries

    /// One insert per delivery: the id is durable, and seen by every daemon on the database, before the delivery
    /// is answered.
    public func recordDelivery(id: String, provider: String) async throws(StoreError) -> Bool {
        try await run { connection, logger in
            let rows = try await connection.query(
                """
                INSERT INTO webhook_delivery (id, provider, received_at) VALUES (\(id), \(provider), now())
                ON CONFLICT (id) DO NOTHING RETURNING 1
                """, logger: logger)
            return try await rows.decode(Int32.self).first(where: { _ in true }) != nil
        }
    }

    /// Nothing waits: `recordDelivery` writes before it returns.
    public func flushDeliveries() async {}

    public func pruneDeliveries(olderThan age: TimeInterval) async throws(StoreError) {
        let cutoff = Date().addingTimeInterval(-age)
        try await run { connection, logger in
            _ = try await connection.query("DELETE FROM webhook_delivery WHERE received_at < \(cutoff)", logger: logger)
        }
    }

    // MARK: - Leases

    /// One statement: the row is inserted, or taken over when its lease has expired or is the owner's own; a lease
    /// another owner still holds is left as it is, and nothing is returned.
    public func takeLease(
        deployment id: Int64, owner: String, duration: TimeInterval
    ) async throws(StoreError) -> Lease? {
        let milliseconds = Int64((duration * 1000).rounded())
        return try await run { connection, logger in
            let rows = try await connection.query(
                """
                INSERT INTO lease (deployment_id, owner, fence, expires_at)
                VALUES (\(id), \(owner), nextval('lease_fence_seq'),
                    now() + make_interval(secs => \(milliseconds) / 1000.0))
                ON CONFLICT (deployment_id) DO UPDATE SET owner = excluded.owner, fence = excluded.fence,
                    expires_at = excluded.expires_at
                WHERE lease.owner = excluded.owner OR lease.expires_at <= now()
                RETURNING fence
                """, logger: logger)
            return try await rows.decode(Int64.self).first(where: { _ in true })
        }.map { Lease(deploymentID: id, owner: owner, fence: $0) }
    }

    public func renewLease(_ lease: Lease, duration: TimeInterval) async throws(StoreError) -> Bool {
        let milliseconds = Int64((duration * 1000).rounded())
        return try await run { connection, logger in
            let rows = try await connection.query(
                """
                UPDATE lease SET expires_at = now() + make_interval(secs => \(milliseconds) / 1000.0)
                WHERE deployment_id = \(lease.deploymentID) AND fence = \(lease.fence) AND expires_at > now()
                RETURNING 1
                """, logger: logger)
            return try await rows.decode(Int32.self).first(where: { _ in true }) != nil
        }
    }

    public func holdsLease(_ lease: Lease, margin: TimeInterval) async throws(StoreError) -> Bool {
        let milliseconds = Int64((margin * 1000).rounded())
        return try await run { connection, logger in
            let rows = try await connection.query(
                """
                SELECT 1 FROM lease WHERE deployment_id = \(lease.deploymentID) AND fence = \(lease.fence)
                    AND expires_at > now() + make_interval(secs => \(milliseconds) / 1000.0)
                """, logger: logger)
            return try await rows.decode(Int32.self).first(where: { _ in true }) != nil
        }
    }

    public func leaseHolder(deployment id: Int64) async throws(StoreError) -> String? {
        try await run { connection, logger in
            let rows = try await connection.query(
                "SELECT owner FROM lease WHERE deployment_id = \(id) AND expires_at > now()", logger: logger)
            return try await rows.decode(String.self).first(where: { _ in true })
        }
    }

    public func interruptExpiredLeases(reason: String) async throws(StoreError) -> [Deployment] {
        let finished = PostgresTime.stored(Date())
        return try await run { connection, logger in
            // No column of `lease` shares a name with one of `deployment`, so the names need no table.
            try await connection.query(
                """
                UPDATE deployment SET status = 'interrupted', error = \(reason), finished_at = \(finished)
                FROM lease
                WHERE lease.deployment_id = deployment.id AND deployment.status = 'running'
                    AND lease.expires_at <= now()
                RETURNING \(unescaped: Deployment.postgresColumns)
                """, logger: logger
            ).records(Deployment.init(postgres:))
        }
    }

    // MARK: - Nodes

    public func heartbeat(node name: String, version: String, startedAt: Date) async throws(StoreError) {
        try await run { connection, logger in
            _ = try await connection.query(
                """
                INSERT INTO node (name, version, started_at, last_seen, stopped_at)
                VALUES (\(name), \(version), \(PostgresTime.stored(startedAt)), now(), NULL)
                ON CONFLICT (name) DO UPDATE SET version = excluded.version, started_at = excluded.started_at,
                    last_seen = excluded.last_seen, stopped_at = NULL
                """, logger: logger)
        }
    }

    public func nodeStopped(_ name: String) async throws(StoreError) {
        try await run { connection, logger in
            _ = try await connection.query("UPDATE node SET stopped_at = now() WHERE name = \(name)", logger: logger)
        }
    }

    public func nodes(downAfter: TimeInterval) async throws(StoreError) -> [NodeRecord] {
        let milliseconds = Int64((downAfter * 1000).rounded())
        return try await run { connection, logger in
            try await connection.query(
                """
                SELECT name, version, started_at, last_seen,
                    stopped_at IS NULL AND last_seen > now() - make_interval(secs => \(milliseconds) / 1000.0) AS up
                FROM node ORDER BY name
                """, logger: logger
            ).records(NodeRecord.init(postgres:))
        }
    }
}

extension PostgresStore: CustomStringConvertible {
    public var description: String { "PostgresStore(\(link.address))" }
}
