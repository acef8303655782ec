import Logging
import PostgresNIO

/// The PostgreSQL store's schema, one migration at a time, each applied once, all in one transaction, and
/// recorded in `slipway_migration`. Several nodes may start at once: an advisory lock makes them take turns, and a
/// node that gets the lock second finds the migrations done.
///
/// A migration, once released, is never edited: a change to the schema is a new migration.
enum PostgresMigrations {
    struct Migration {
        let version: Int32
        let name: String
        let statements: [String]
    }

    /// Any number, the same for every node: the key of the advisory lock the migrations are applied under.
    static let lockKey: Int64 = 0x736C_6970_7761_7931  // "slipway1"

    /// The key of the lock a daemon holds on its database while it runs (`PostgresStore.claimForOneDaemon`).
    static let daemonLockKey: Int64 = 0x736C_6970_7761_7964  // "slipwayd"

    /// The first key of the per-app advisory locks (`pg_advisory_xact_lock(appLockSpace, hashtext(app))`), so that
    /// they do not meet other programs' locks on the same database.
    static let appLockSpace: Int32 = 0x736C_6970  // "slip"

    static let all: [Migration] = [
        Migration(
            version: 1, name: "deployments, steps, releases, app states, deliveries",
            statements: [
                """
                CREATE TABLE deployment (
                    id bigserial PRIMARY KEY,
                    app text NOT NULL,
                    kind text NOT NULL,
                    "trigger" text NOT NULL,
                    ref text NOT NULL,
                    "commit" text NOT NULL,
                    message text NOT NULL,
                    author text NOT NULL,
                    status text NOT NULL,
                    phase text NOT NULL,
                    created_at timestamptz NOT NULL,
                    started_at timestamptz,
                    finished_at timestamptz,
                    duration_ms bigint,
                    superseded_by bigint,
                    rolled_back_to bigint,
                    error text,
                    target_release bigint,
                    gated_from text
                )
                """,
                // Keyset paging per app, newest first, and the newest deployment of each app.
                "CREATE INDEX deployment_app_id ON deployment (app, id)",
                // Start-up recovery and the queue look deployments up by status.
                "CREATE INDEX deployment_status ON deployment (status)",
                """
                CREATE TABLE step (
                    id bigserial PRIMARY KEY,
                    deployment_id bigint NOT NULL REFERENCES deployment (id) ON DELETE CASCADE,
                    position integer NOT NULL,
                    phase text NOT NULL,
                    name text NOT NULL,
                    status text NOT NULL,
                    exit_code integer,
                    started_at timestamptz,
                    finished_at timestamptz,
                    duration_ms bigint,
                    process_group integer
                )
                """,
                "CREATE INDEX step_deployment ON step (deployment_id, position)",
                "CREATE INDEX step_running ON step (status) WHERE status = 'running'",
                """
                CREATE TABLE release (
                    id bigint PRIMARY KEY,
                    app text NOT NULL,
                    "commit" text NOT NULL,
                    message text NOT NULL,
                    author text NOT NULL,
                    created_at timestamptz NOT NULL,
                    succeeded boolean NOT NULL,
                    removed_at timestamptz
                )
                """,
                "CREATE INDEX release_app_id ON release (app, id)",
                "CREATE TABLE app_state (app text PRIMARY KEY, live_release bigint, last_seen_head text)",
                """
                CREATE TABLE webhook_delivery (
                    id text PRIMARY KEY, provider text NOT NULL, received_at timestamptz NOT NULL)
                """,
                "CREATE INDEX webhook_delivery_received ON webhook_delivery (received_at)",
            ]),
        Migration(
            version: 2, name: "nodes",
            statements: [
                """
                CREATE TABLE node (
                    name text PRIMARY KEY,
                    version text NOT NULL,
                    started_at timestamptz NOT NULL,
                    last_seen timestamptz NOT NULL,
                    stopped_at timestamptz
                )
                """
            ]),
        Migration(
            version: 3, name: "leases",
            statements: [
                """
                CREATE TABLE lease (
                    deployment_id bigint PRIMARY KEY REFERENCES deployment (id) ON DELETE CASCADE,
                    owner text NOT NULL,
                    fence bigint NOT NULL,
                    expires_at timestamptz NOT NULL
                )
                """,
                // The fencing tokens: a sequence never gives a number twice, whatever is rolled back or deleted.
                "CREATE SEQUENCE lease_fence_seq",
            ]),
    ]

    static func migrate(_ link: PostgresLink) async throws(StoreError) {
        try await link.transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: quiet)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS slipway_migration (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """, logger: quiet)
            var applied: Set<Int32> = []
            for try await version in try await connection.query(
                "SELECT version FROM slipway_migration", logger: quiet
            ).decode(Int32.self) {
                applied.insert(version)
            }
            for migration in all where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: quiet)
                }
                try await connection.query(
                    "INSERT INTO slipway_migration (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: quiet)
            }
        }
    }

    static let quiet = Logger(label: "slipway.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
}
