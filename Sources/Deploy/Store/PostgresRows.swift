import Foundation
import PostgresNIO
import SlipwayAPI

// The store's records as PostgreSQL rows: the columns each query selects, and how a row becomes a record. Times are
// kept to the millisecond, as the SQLite store keeps them, so that what was written is what a read gives back.

enum PostgresTime {
    /// `date` as it reads back from the store.
    static func stored(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000)
    }
}

extension PostgresRandomAccessRow {
    func value<T: PostgresDecodable>(_ column: String, _ type: T.Type = T.self) throws -> T {
        try self[column].decode(T.self)
    }

    func date(_ column: String) throws -> Date {
        PostgresTime.stored(try self[column].decode(Date.self))
    }

    func optionalDate(_ column: String) throws -> Date? {
        try self[column].decode(Date?.self).map(PostgresTime.stored)
    }

    /// A column that holds one of the contract's names (a status, a phase…).
    func name<T: RawRepresentable>(_ column: String, _ type: T.Type) throws -> T where T.RawValue == String {
        let raw = try self[column].decode(String.self)
        guard let value = T(rawValue: raw) else {
            throw StoreError.failed("the store holds '\(raw)' in \(column), which this version does not know")
        }
        return value
    }
}

extension Deployment {
    static let postgresColumns = """
        id, app, kind, "trigger", ref, "commit", message, author, status, phase, created_at, started_at, finished_at, \
        duration_ms, superseded_by, rolled_back_to, error, target_release, gated_from
        """

    init(postgres row: PostgresRow) throws {
        let row = row.makeRandomAccess()
        self.init(
            id: try row.value("id"), app: try row.value("app"), kind: try row.name("kind", DeploymentKind.self),
            trigger: try row.name("trigger", DeploymentTrigger.self), ref: try row.value("ref"),
            commit: try row.value("commit"), message: try row.value("message"), author: try row.value("author"),
            status: try row.name("status", DeploymentStatus.self), phase: try row.name("phase", DeploymentPhase.self),
            createdAt: try row.date("created_at"), targetRelease: try row.value("target_release"))
        startedAt = try row.optionalDate("started_at")
        finishedAt = try row.optionalDate("finished_at")
        durationMs = try row.value("duration_ms", Int64?.self).map { Int($0) }
        supersededBy = try row.value("superseded_by")
        rolledBackTo = try row.value("rolled_back_to")
        error = try row.value("error")
        gatedFrom = try row.value("gated_from")
    }
}

extension StepRecord {
    static let postgresColumns =
        "id, deployment_id, position, phase, name, status, exit_code, started_at, finished_at, duration_ms, process_group"

    init(postgres row: PostgresRow) throws {
        let row = row.makeRandomAccess()
        self.init(
            id: try row.value("id"), deploymentId: try row.value("deployment_id"),
            position: Int(try row.value("position", Int32.self)), phase: try row.name("phase", StepPhase.self),
            name: try row.value("name"), status: try row.name("status", StepStatus.self))
        exitCode = try row.value("exit_code")
        startedAt = try row.optionalDate("started_at")
        finishedAt = try row.optionalDate("finished_at")
        durationMs = try row.value("duration_ms", Int64?.self).map { Int($0) }
        processGroup = try row.value("process_group")
    }
}

extension Release {
    static let postgresColumns = #"id, app, "commit", message, author, created_at, succeeded, removed_at"#

    init(postgres row: PostgresRow) throws {
        let row = row.makeRandomAccess()
        self.init(
            id: try row.value("id"), app: try row.value("app"), commit: try row.value("commit"),
            message: try row.value("message"), author: try row.value("author"), createdAt: try row.date("created_at"),
            succeeded: try row.value("succeeded"), removedAt: try row.optionalDate("removed_at"))
    }
}

extension AppState {
    init(postgres row: PostgresRow) throws {
        let row = row.makeRandomAccess()
        self.init(
            app: try row.value("app"), liveRelease: try row.value("live_release"),
            lastSeenHead: try row.value("last_seen_head"))
    }
}

extension NodeRecord {
    init(postgres row: PostgresRow) throws {
        let row = row.makeRandomAccess()
        self.init(
            name: try row.value("name"), version: try row.value("version"), startedAt: try row.date("started_at"),
            lastSeen: try row.date("last_seen"), up: try row.value("up"))
    }
}

extension PostgresRowSequence {
    /// Every row, each made into a record; a row that does not read becomes `StoreError.failed`.
    func records<T>(_ make: (PostgresRow) throws -> T) async throws -> [T] {
        var records: [T] = []
        for try await row in self { records.append(try make(row)) }
        return records
    }
}
