import Foundation
import Logging
import NIOCore
import Pipeline
import PostgresNIO

/// The PostgreSQL store's way to its database: postgres-nio's connection pool, with what a daemon needs on top of
/// it when the database goes away.
///
/// - Every operation has a deadline. The pool waits up to a minute for a connection it cannot make, and a query on
///   a connection whose peer vanished (a cut network) waits for TCP to give up; a request to the API is answered
///   503 long before either, and a deployment learns in time that it cannot record.
/// - An operation still waiting for a connection after `suspectAfter` starts a probe: a database that stopped is
///   found away within a second or so, not at the lease deadline.
/// - Once the database is found away, operations fail at once (`StoreError.unavailable`), those waiting for a
///   connection as well as those that come later, while a probe tries a fresh connection with a growing backoff.
///   When the probe gets through, the pool is replaced by a new one: connections stuck on the old network path are
///   dropped with it, and the new pool starts without the old one's backoff.
final class PostgresLink: Sendable {
    /// How long an operation may wait for a connection from the pool, and then for its queries.
    /// A busy pool (many deployments and requests at once) can take seconds to hand out a connection, as SQLite's
    /// busy timeout lets a writer wait; a database that is away is found by `connectLimit` first.
    static let leaseLimit = Duration.seconds(10)
    /// How long making one connection may take.
    static let connectLimit = Duration.seconds(3)
    static let queryLimit = Duration.seconds(10)
    /// How long an operation waits for a connection before the link checks that the database is there at all.
    /// A healthy pool hands out connections in milliseconds; a probe that finds the database there changes nothing.
    static let suspectAfter = Duration.seconds(1)

    private struct Current {
        var client: PostgresClient
        /// The pool's own task: it lives as long as the pool, which the store replaces on its own schedule, so it
        /// cannot be a child of any one caller's task.
        var runner: Task<Void, Never>
        var away = false
        var probing = false
        var closed = false
        var generation = 0
        /// Operations waiting for a connection, by number: each fails at once when the database is found away.
        var waiting: [Int: @Sendable () -> Void] = [:]
        var nextWaiting = 0
    }

    let location: PostgresLocation
    private let configuration: PostgresClient.Configuration
    private let logger: Logger
    private let current: Locked<Current>

    init(location: PostgresLocation, logger: Logger) {
        self.location = location
        configuration = location.clientConfiguration
        self.logger = logger
        current = Locked(Self.start(configuration, logger: logger))
    }

    /// Where the database is, for messages: never the password.
    var address: String { location.address }

    deinit {
        current.withLock { $0.runner.cancel() }
    }

    private static func start(_ configuration: PostgresClient.Configuration, logger: Logger) -> Current {
        var background = logger
        background.logLevel = .critical  // the pool's own reconnect messages; the link reports the database's state
        let client = PostgresClient(configuration: configuration, backgroundLogger: background)
        return Current(client: client, runner: Task { await client.run() })
    }

    /// Closes the pool and stops any probe; operations after this fail.
    func close() {
        current.withLock { state in
            state.closed = true
            state.runner.cancel()
        }
    }

    /// True while the database is known to be away.
    var isAway: Bool { current.withLock { $0.away } }

    /// Runs `body` on a connection of the pool, within the deadlines; PostgreSQL's errors become the store's.
    func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        do {
            return try await withinDeadlines { connection in try await body(connection) }
        } catch {
            let mapped = StoreError(postgres: error, address: address)
            if case .unavailable = mapped { suspect() }
            throw mapped
        }
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    func transaction<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        let logger = self.logger
        return try await withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    /// A connection of its own, outside the pool, for LISTEN: the caller closes it.
    func connect() async throws(StoreError) -> PostgresConnection {
        do {
            return try await Self.connect(location, logger: logger)
        } catch {
            throw StoreError(postgres: error, address: address)
        }
    }

    private static func connect(_ location: PostgresLocation, logger: Logger) async throws -> PostgresConnection {
        var quiet = logger
        quiet.logLevel = .critical
        return try await PostgresConnection.connect(
            configuration: try location.connectionConfiguration(), id: 0, logger: quiet)
    }

    /// The pool can wait a minute for a connection it cannot make; the wait is given up after `leaseLimit`. A query
    /// that outlives `queryLimit` has its connection closed under it, which ends the query at once whatever the
    /// network does.
    ///
    /// The caller is answered when the first deadline passes, without waiting for the pool's own call to end. Under
    /// load, a lease the pool never answered, even once cancelled, kept its caller (and so a whole test run) waiting
    /// forever; a deadline that only cancels cannot bound a wait that ignores cancellation. The pool's call then
    /// ends in its own task, whenever it does.
    private func withinDeadlines<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let answer = OneAnswer<T>()
        // Known away, or waiting where the probe that finds it away will fail it: decided under one lock.
        let (client, number) = try current.withLock { state throws -> (PostgresClient, Int) in
            if state.away { throw DatabaseAway() }
            state.nextWaiting += 1
            state.waiting[state.nextWaiting] = { answer.giveUnlessLeased(.failure(DatabaseAway())) }
            return (state.client, state.nextWaiting)
        }
        defer { _ = current.withLock { $0.waiting.removeValue(forKey: number) } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                answer.wait(continuation)
                let work = Task {
                    do {
                        let value = try await client.withConnection { connection in
                            // Leased after the caller was answered: nothing may be done in its name.
                            guard answer.lease() else { throw DeadlinePassed() }
                            let timer = connection.eventLoop.scheduleTask(in: .init(Self.queryLimit)) {
                                _ = connection.close() as EventLoopFuture<Void>
                            }
                            defer { timer.cancel() }
                            return try await body(connection)
                        }
                        answer.give(.success(value))
                    } catch {
                        answer.give(.failure(error))
                    }
                }
                let timer = Task {
                    // Slow to lease: is the database there? Not leased in time: the pool is given up on. Leased:
                    // the query's own limit applies, and a second after it the caller is answered even if the
                    // closed connection never says so.
                    try? await Task.sleep(for: Self.suspectAfter)
                    if !answer.isLeased && !Task.isCancelled { self.suspect() }
                    try? await Task.sleep(for: Self.leaseLimit - Self.suspectAfter)
                    answer.giveUnlessLeased(.failure(DeadlinePassed()))
                    try? await Task.sleep(for: Self.queryLimit + .seconds(1))
                    answer.give(.failure(DeadlinePassed()))
                }
                answer.whenAnswered {
                    work.cancel()
                    timer.cancel()
                }
            }
        } onCancel: {
            // Once leased, the work is let finish (within the deadlines), so that a caller told it failed knows it
            // was not done.
            answer.giveUnlessLeased(.failure(CancellationError()))
        }
    }

    /// An operation could not reach the database: probe it on a fresh connection, and while that fails, fail
    /// every operation at once until it succeeds.
    private func suspect() {
        let start = current.withLock { state -> Bool in
            if state.probing { return false }
            state.probing = true
            return true
        }
        guard start else { return }
        // The probe outlives the operation that started it: whoever asked has been answered already.
        Task { await probe() }
    }

    private func probe() async {
        var backoff = Duration.milliseconds(100)
        var reported = false
        while !current.withLock({ $0.closed }) {
            if await reachable() {
                let replaced = current.withLock { state -> Bool in
                    state.probing = false
                    guard state.away, !state.closed else { return false }
                    state.runner.cancel()
                    let generation = state.generation + 1
                    state = Self.start(configuration, logger: logger)
                    state.generation = generation
                    return true
                }
                if replaced { logger.notice("the database at \(address) is back; reconnected") }
                return
            }
            let waiting = current.withLock { state in
                state.away = true
                return Array(state.waiting.values)
            }
            for fail in waiting { fail() }
            if !reported {
                logger.error("the database at \(address) cannot be reached; retrying with backoff")
                reported = true
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(5))
        }
    }

    /// True when a fresh connection gets an answer to `SELECT 1` in time.
    private func reachable() async -> Bool {
        let location = self.location
        let logger = self.logger
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                guard let connection = try? await Self.connect(location, logger: logger) else { return false }
                let timer = connection.eventLoop.scheduleTask(in: .init(Self.connectLimit)) {
                    _ = connection.close() as EventLoopFuture<Void>
                }
                let answered = (try? await connection.query("SELECT 1", logger: logger)) != nil
                timer.cancel()
                try? await connection.close()
                return answered
            }
            group.addTask {
                try? await Task.sleep(for: Self.connectLimit * 2)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}

/// An operation ran out of time.
struct DeadlinePassed: Error {}

/// An operation waiting for a connection was given up on: the database was found away meanwhile.
struct DatabaseAway: Error {}

/// The one answer of an operation raced against its deadlines and its caller's cancellation: the first to give one
/// resumes the caller; what comes later is dropped, and the tasks still running are cancelled. The lease, the lease
/// deadline and the caller's cancellation are decided under the same lock, so an operation told it failed never
/// runs afterwards.
final class OneAnswer<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var given: Result<T, any Error>?
        var leased = false
        var whenAnswered: (@Sendable () -> Void)?
    }

    private let state = Locked(State())

    func wait(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let given = state.given { return given }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// What to do once there is an answer (at once, if there is one already): cancel what still runs.
    func whenAnswered(_ cancel: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.given != nil { return true }
            state.whenAnswered = cancel
            return false
        }
        if now { cancel() }
    }

    var isLeased: Bool { state.withLock { $0.leased } }

    /// Marks the connection leased; false when the caller has been answered already.
    func lease() -> Bool {
        state.withLock { state in
            guard state.given == nil else { return false }
            state.leased = true
            return true
        }
    }

    func giveUnlessLeased(_ result: Result<T, any Error>) {
        give(result, unlessLeased: true)
    }

    func give(_ result: Result<T, any Error>, unlessLeased: Bool = false) {
        let (continuation, cancel) = state.withLock {
            state -> (CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
            guard state.given == nil, !(unlessLeased && state.leased) else { return (nil, nil) }
            state.given = result
            defer {
                state.continuation = nil
                state.whenAnswered = nil
            }
            return (state.continuation, state.whenAnswered)
        }
        continuation?.resume(with: result)
        cancel?()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension StoreError {
    /// PostgreSQL's and postgres-nio's errors, in the store's words. The database's own message (never the query or
    /// its values) is kept for the daemon's log.
    init(postgres error: any Error, address: String) {
        if let wrapped = error as? PostgresTransactionError {
            let inner = wrapped.closureError ?? wrapped.beginError ?? wrapped.commitError ?? wrapped.rollbackError
            if let inner {
                self.init(postgres: inner, address: address)
                return
            }
        }
        if let error = error as? StoreError {
            self = error
            return
        }
        if error is DeadlinePassed || error is CancellationError {
            self = .unavailable("the database at \(address) did not answer in time")
            return
        }
        // The pool's own error (its module is not imported): it gave up making connections.
        if error is DatabaseAway || String(describing: type(of: error)) == "ConnectionPoolError" {
            self = .unavailable("the database at \(address) cannot be reached")
            return
        }
        guard let error = error as? PSQLError else {
            self = .failed("\(type(of: error)): \(error)")
            return
        }
        switch error.code {
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            let message = error.serverInfo?[.message] ?? "an error"
            switch state {
            case "53100": self = .full
            case _ where state.hasPrefix("08") || state.hasPrefix("57P") || state == "53300":
                self = .unavailable("the database at \(address) is not taking connections: \(message)")
            case _ where state.hasPrefix("28"):
                self = .failed("the database at \(address) refused the login: \(message)")
            default: self = .failed("PostgreSQL: \(message) (SQLSTATE \(state))")
            }
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection, .poolClosed,
            .queryCancelled, .messageDecodingFailure, .unexpectedBackendMessage:
            self = .unavailable("the connection to the database at \(address) was lost")
        case .sslUnsupported, .failedToAddSSLHandler, .receivedUnencryptedDataAfterSSLRequest:
            self = .failed("TLS to the database at \(address) failed (see sslmode in the store's URL)")
        case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
            self = .failed("the database at \(address) refused the login (is the password right?)")
        default:
            self = .failed("PostgreSQL: \(error.code)")
        }
    }
}
