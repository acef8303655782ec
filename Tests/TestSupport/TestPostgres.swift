import Deploy
import Foundation
import Logging
import PostgresNIO

/// PostgreSQL for the tests. `script/test` starts a throwaway server (`script/test-postgres`) and names it in
/// `SLIPWAY_TEST_POSTGRES_URL`; each test then gets a database of its own on it. Without that variable the tests
/// that need PostgreSQL are skipped, with `skipReason`, and the store contract runs on SQLite only.
public enum TestPostgres {
    /// The test server's URL, or nil when none was given.
    public static let url: String? = ProcessInfo.processInfo.environment["SLIPWAY_TEST_POSTGRES_URL"].flatMap {
        $0.isEmpty ? nil : $0
    }

    public static var isAvailable: Bool { url != nil }

    public static let skipReason =
        "SLIPWAY_TEST_POSTGRES_URL is not set; script/test sets it, or by hand: export SLIPWAY_TEST_POSTGRES_URL=$(script/test-postgres start /tmp/slipway-pg)"

    /// The database a scratch directory stands for: made, empty, the first time it is asked for, and the same one
    /// afterwards (so that a store opened again finds what it wrote, as after a restart).
    public static func database(for scratch: ScratchDirectory) async throws -> PostgresLocation {
        let marker = scratch("postgres-database")
        if let name = try? String(contentsOfFile: marker, encoding: .utf8) { return try location(database: name) }
        let name = "slipway_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await createDatabase(name)
        try name.write(toFile: marker, atomically: true, encoding: .utf8)
        return try location(database: name)
    }

    /// `database(for:)` as a URL for `slipway serve --store`.
    public static func storeURL(for scratch: ScratchDirectory) async throws -> String {
        let location = try await database(for: scratch)
        guard let url, var components = URLComponents(string: url) else {
            throw TestFailure("SLIPWAY_TEST_POSTGRES_URL is not a URL")
        }
        components.path = "/" + location.database
        return components.string ?? url
    }

    private static func location(database: String) throws -> PostgresLocation {
        guard let url, var location = try PostgresLocation(url: url) else {
            throw TestFailure("SLIPWAY_TEST_POSTGRES_URL is not a postgres:// URL")
        }
        location.database = database
        return location
    }

    private static func createDatabase(_ name: String) async throws {
        guard let url, let server = try PostgresLocation(url: url) else {
            throw TestFailure("SLIPWAY_TEST_POSTGRES_URL is not a postgres:// URL")
        }
        try await execute(on: server, "CREATE DATABASE \(name)")
    }

    /// Runs one statement on its own connection.
    public static func execute(on location: PostgresLocation, _ sql: String) async throws {
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: .disable)
        configuration.options.connectTimeout = .seconds(10)
        let logger = Logger(label: "test-postgres", factory: { _ in SwiftLogNoOpLogHandler() })
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}

/// A PostgreSQL server of one test's own, which it can stop and start again on the same port: for the tests of a
/// database that goes away. Started through `script/test-postgres`, in a directory under /tmp (which the
/// unprivileged user the server runs as can reach).
public final class PostgresServer: Sendable {
    public let directory: String
    public let url: String

    private static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("script/test-postgres").path

    /// Creates and starts a server.
    public static func start() async throws -> PostgresServer {
        let directory = "/tmp/slipway-pg-" + UUID().uuidString.prefix(8).lowercased()
        let url = try await run("start", directory)
        return PostgresServer(directory: directory, url: url)
    }

    private init(directory: String, url: String) {
        self.directory = directory
        self.url = url
    }

    public var location: PostgresLocation {
        get throws {
            guard let location = try PostgresLocation(url: url) else { throw TestFailure("not a URL: \(url)") }
            return location
        }
    }

    /// Stops the server; the connections to it are closed.
    public func stop() async throws {
        _ = try await Self.run("stop", directory)
    }

    /// Starts it again, on the same port.
    public func restart() async throws {
        _ = try await Self.run("start", directory)
    }

    /// Stops it and deletes its files.
    public func remove() async throws {
        _ = try await Self.run("remove", directory)
    }

    /// Through `SpawnedProcess`, not Foundation's `Process`, which loses track of children when a server they
    /// start closes the descriptors it inherited (see `SpawnedProcess`); the output goes to a file.
    private static func run(_ action: String, _ directory: String) async throws -> String {
        let output = NSTemporaryDirectory() + "slipway-test-postgres-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try SpawnedProcess("/bin/sh", [script, action, directory], log: output)
        let status = await process.waitForExit(seconds: 120)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw TestFailure("script/test-postgres \(action) failed (\(String(describing: status))): \(text)")
        }
        return text.split(separator: "\n").last.map(String.init) ?? ""
    }
}
