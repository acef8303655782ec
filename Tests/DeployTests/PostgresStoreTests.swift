import Foundation
import Logging
import Pipeline
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

/// What the PostgreSQL store does beyond the contract every store keeps (`StoreContractTests`): its URL, a schema
/// that several daemons migrate at once, ids and deliveries shared through the database, and a database that goes
/// away and comes back.
@Suite struct PostgresStoreTests {
    func request(_ app: String, _ commit: String) -> DeploymentRequest {
        DeploymentRequest(app: app, trigger: .push, ref: "refs/heads/main", commit: commit)
    }

    @Test func theURLGivesEveryPartAndNeverShowsThePassword() throws {
        let location = try #require(
            try PostgresLocation(url: "postgres://deploy:s%40cret@db.internal:6543/slipway?sslmode=require"))
        #expect(location.host == "db.internal" && location.port == 6543 && location.database == "slipway")
        #expect(location.user == "deploy" && location.password == "s@cret" && location.sslMode == .require)
        #expect(location.address == "db.internal:6543/slipway")
        #expect(!"\(location.address)".contains("cret"))
        let defaults = try #require(
            try PostgresLocation(url: "postgresql://db", environment: ["PGUSER": "ops", "PGPASSWORD": "from-env"]))
        #expect(defaults.port == 5432 && defaults.user == "ops" && defaults.database == "ops")
        #expect(defaults.password == "from-env" && defaults.sslMode == .prefer)
        #expect(try PostgresLocation(url: "sqlite") == nil)
    }

    @Test func aBadURLIsRefusedWithoutItsPassword() throws {
        #expect(throws: DeployError.self) { try PostgresLocation(url: "postgres://u:pw@db/x?sslmode=sometimes") }
        do {
            _ = try PostgresLocation(url: "postgres://u:hunter2@/x")
            Issue.record("a URL without a host was taken")
        } catch {
            #expect("\(error)".contains("postgres://USER:PASSWORD@HOST:PORT/DB"))
            #expect(!"\(error)".contains("hunter2"))
        }
    }

    @Test(.enabled(if: TestPostgres.isAvailable, Comment(rawValue: TestPostgres.skipReason)))
    func daemonsStartingTogetherMigrateOnceAndShareIdsAndDeliveries() async throws {
        let location = try await TestPostgres.database(for: ScratchDirectory("slipway-pg"))
        let logger = Logger(label: "test")
        async let first = PostgresStore.open(location, logger: logger)
        async let second = PostgresStore.open(location, logger: logger)
        let (a, b) = try await (first, second)
        let one = try await a.insert(request("x", "1"))
        let two = try await b.insert(request("y", "2"))
        #expect(two.id > one.id)
        #expect(try await b.deployment(one.id) == one)
        // A delivery seen by one daemon is a duplicate for the other, at once: nothing waits in memory.
        #expect(try await a.recordDelivery(id: "github:1", provider: "github"))
        #expect(try await b.recordDelivery(id: "github:1", provider: "github") == false)
    }

    @Test(.enabled(if: TestPostgres.isAvailable, Comment(rawValue: TestPostgres.skipReason)))
    func reservedIdsAreNotGivenAgain() async throws {
        let store = try await PostgresStore.open(
            try await TestPostgres.database(for: ScratchDirectory("slipway-pg")), logger: Logger(label: "test"))
        try await store.reserveDeploymentIDs(above: 41)
        #expect(try await store.insert(request("a", "1")).id == 42)
        try await store.reserveDeploymentIDs(above: 10)
        #expect(try await store.insert(request("a", "2")).id == 43, "a lower mark never moves ids back")
    }

    /// The database stops under an open store: every operation fails at once as `unavailable` (which the API
    /// answers 503), and once the database is back the store reconnects by itself.
    @Test(.enabled(if: TestPostgres.isAvailable, Comment(rawValue: TestPostgres.skipReason)))
    func aStoreSurvivesTheDatabaseGoingAwayAndComingBack() async throws {
        let server = try await PostgresServer.start()
        do {
            let store = try await PostgresStore.open(try server.location, logger: Logger(label: "test"))
            let before = try await store.insert(request("a", "1"))
            try await server.stop()
            await #expect(throws: StoreError.self) { _ = try await store.deployment(before.id) }
            do {
                _ = try await store.insert(request("a", "2"))
                Issue.record("an insert succeeded with the database stopped")
            } catch {
                guard case .unavailable = error else {
                    Issue.record("expected unavailable, got \(error)")
                    throw error
                }
            }
            try await server.restart()
            try await waitUntil("the store to reconnect") {
                (try? await store.deployment(before.id)) == before
            }
            let after = try await store.insert(request("a", "3"))
            #expect(after.id > before.id)
            store.close()
        } catch {
            try? await server.remove()
            throw error
        }
        try await server.remove()
    }
}

/// How an operation on the pool is answered (`OneAnswer`): the first answer wins, and the lease, the lease deadline
/// and the caller's cancellation are decided together, so a caller told it failed is never done in its name later.
@Suite struct OneAnswerTests {
    private func result(of answer: OneAnswer<Int>) async throws -> Int {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
            answer.wait(continuation)
        }
    }

    @Test func aLeaseAfterTheDeadlineRunsNothing() async throws {
        let answer = OneAnswer<Int>()
        let stops = Locked(0)
        answer.whenAnswered { stops.withLock { $0 += 1 } }
        answer.giveUnlessLeased(.failure(DeadlinePassed()))
        #expect(answer.lease() == false, "the lease came after the caller was answered")
        answer.give(.success(1))
        #expect(stops.value == 1, "the work and the timer are stopped once, at the first answer")
        await #expect(throws: DeadlinePassed.self) { _ = try await result(of: answer) }
    }

    @Test func onceLeasedTheCallerGetsTheRealOutcome() async throws {
        let answer = OneAnswer<Int>()
        #expect(answer.lease())
        answer.giveUnlessLeased(.failure(CancellationError()))
        answer.give(.success(7))
        #expect(try await result(of: answer) == 7, "neither the lease deadline nor a cancel answers a leased call")
    }

    @Test func theLastDeadlineAnswersALeasedCallThatNeverEnds() async throws {
        let answer = OneAnswer<Int>()
        #expect(answer.lease())
        answer.give(.failure(DeadlinePassed()))
        answer.give(.success(7))
        await #expect(throws: DeadlinePassed.self) { _ = try await result(of: answer) }
        let stopped = Locked(false)
        answer.whenAnswered { stopped.withLock { $0 = true } }
        #expect(stopped.value, "what asks to be stopped after the answer is stopped at once")
    }
}
