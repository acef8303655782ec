import Foundation
import Logging

/// Which store a daemon keeps its records in (`--store`, or `SLIPWAY_STORE`).
public enum StoreChoice: Sendable, Equatable, CustomStringConvertible {
    /// The embedded store at `<state>/slipway.sqlite`: the default.
    case sqlite
    /// A PostgreSQL database, which several daemons can share.
    case postgres(PostgresLocation)

    /// Reads `sqlite` or a `postgres://USER:PASSWORD@HOST:PORT/DB` URL.
    public init(
        parsing text: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(DeployError) {
        if text == "sqlite" {
            self = .sqlite
        } else if let location = try PostgresLocation(url: text, environment: environment) {
            self = .postgres(location)
        } else {
            throw .invalid(
                "--store '\(PostgresLocation.hidingPassword(text))' is neither sqlite nor a URL like "
                    + "postgres://USER:PASSWORD@HOST:PORT/DB")
        }
    }

    /// The store, for messages: never a password.
    public var description: String {
        switch self {
        case .sqlite: "sqlite"
        case .postgres(let location): location.description
        }
    }

    /// Opens the store for a daemon whose state folder is `state`. A PostgreSQL database that cannot be reached
    /// is waited for, with a growing pause between tries: daemons and their database often start at the same time,
    /// as a machine boots. Any other error is thrown at once.
    func open(state: String, logger: Logger) async throws(StoreError) -> any DeployStore {
        switch self {
        case .sqlite:
            return try SQLiteStore(path: state + "/slipway.sqlite")
        case .postgres(let location):
            var pause = Duration.milliseconds(250)
            while true {
                do {
                    return try await Self.openForDaemon(location, logger: logger)
                } catch {
                    guard case .unavailable(let reason) = error else { throw error }
                    logger.warning("waiting for the store: \(reason); trying again in \(pause)")
                    do {
                        try await Task.sleep(for: pause)
                    } catch {
                        throw StoreError.unavailable(reason)
                    }
                    pause = min(pause * 2, .seconds(5))
                }
            }
        }
    }

    /// Opens a PostgreSQL store and claims it for this daemon.
    private static func openForDaemon(
        _ location: PostgresLocation, logger: Logger
    ) async throws(StoreError)
        -> PostgresStore
    {
        let store = try await PostgresStore.open(location, logger: logger)
        do {
            try await store.claimForOneDaemon()
        } catch {
            store.close()
            throw error
        }
        return store
    }
}
