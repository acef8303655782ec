import Foundation
import TestSupport
import Testing

/// The real binary on a PostgreSQL store (`--store postgres://…`): it deploys as it does on SQLite, keeps its
/// history in the database, and rides out the database going away.
@Suite(.serialized, .enabled(if: TestPostgres.isAvailable, Comment(rawValue: TestPostgres.skipReason)))
struct PostgresStoreEndToEndTests {
    static let pipeline = "build:\n  - echo \"building $SLIPWAY_COMMIT\"\n"

    func serve(_ apps: AppsOnOrigin, store: String, log: String) throws -> DaemonProcess {
        try DaemonProcess(
            arguments: ["--pipelines", apps.pipelines, "--state", apps.state, "--store", store],
            logFile: apps.scratch(log))
    }

    /// Asks for a deployment of the app's branch and waits for it to succeed; returns its id.
    func deploy(_ daemon: DaemonProcess, _ app: String) async throws -> Int {
        let (status, accepted) = try await daemon.request("/api/v1/apps/\(app)/deploy", method: "POST", body: [:])
        #expect(status == 202, "\(accepted)")
        let id = try #require(accepted["id"] as? Int, "\(accepted)")
        let done = try await daemon.wait(for: "/api/v1/deployments/\(id)", seconds: 180) {
            ["succeeded", "failed", "interrupted", "cancelled"].contains($0["status"] as? String ?? "")
        }
        #expect(done["status"] as? String == "succeeded", "\(done)\n\(daemon.log)")
        return id
    }

    @Test func aDaemonOnPostgresDeploysAndFindsItsHistoryThereAfterARestart() async throws {
        let apps = try AppsOnOrigin("slipway-e2e-pg", apps: ["hello": Self.pipeline])
        let sha = try apps.push("first")
        let store = try await TestPostgres.storeURL(for: apps.scratch)
        let first = try serve(apps, store: store, log: "first.log")
        let id = try await deploy(first, "hello")
        // One daemon per database, for now: a second one, with a state folder of its own, refuses to start.
        do {
            let second = try DaemonProcess(
                arguments: ["--pipelines", apps.pipelines, "--state", apps.scratch("other-state"), "--store", store],
                logFile: apps.scratch("refused.log"))
            Issue.record("a second daemon started on the same database: \(second.log)")
        } catch {
            #expect("\(error)".contains("another daemon uses the database"), "\(error)")
        }
        first.signal(SIGTERM)
        #expect(await first.waitForExit(seconds: 30) == 0, "\(first.log)")
        #expect(!FileManager.default.fileExists(atPath: apps.state + "/slipway.sqlite"), "the records are not on disk")
        #expect(!first.log.contains(store), "the URL, with its password, is not logged")

        let second = try serve(apps, store: store, log: "second.log")
        let listed = try await second.request("/api/v1/apps/hello/deployments").json
        let deployments = try #require(listed["deployments"] as? [[String: Any]], "\(listed)")
        let kept = try #require(deployments.first { $0["id"] as? Int == id }, "\(listed)")
        #expect(kept["commit"] as? String == sha)
        let app = try await second.request("/api/v1/apps/hello").json
        #expect(app["status"] as? String == "idle", "\(app)")
        let current = app["current"] as? [String: Any]
        #expect(current?["commit"] as? String == sha, "\(app)")
        #expect(try await deploy(second, "hello") > id)
    }

    /// The database stops under a running daemon: the API answers 503 with the error JSON (and nothing is
    /// accepted that could be lost), and once the database is back the daemon serves and deploys again by itself.
    @Test func whileTheDatabaseIsAwayTheAPIAnswers503AndTheDaemonRecoversByItself() async throws {
        let server = try await PostgresServer.start()
        do {
            let apps = try AppsOnOrigin("slipway-e2e-pg-away", apps: ["hello": Self.pipeline])
            try apps.push("first")
            let daemon = try serve(apps, store: server.url, log: "daemon.log")
            _ = try await deploy(daemon, "hello")

            try await server.stop()
            let (status, body) = try await daemon.request("/api/v1/apps")
            #expect(status == 503, "\(body)")
            let error = body["error"] as? [String: Any]
            #expect(error?["code"] as? String == "store_unavailable", "\(body)")
            let (refused, _) = try await daemon.request("/api/v1/apps/hello/deploy", method: "POST", body: [:])
            #expect(refused == 503, "a deployment that cannot be recorded is not accepted")

            try await server.restart()
            try await waitUntil("the daemon to reach its database again") {
                (try? await daemon.request("/api/v1/apps").status) == 200
            }
            try apps.push("second")
            _ = try await deploy(daemon, "hello")
            #expect(daemon.log.contains("cannot be reached") && daemon.log.contains("reconnected"), "\(daemon.log)")
            daemon.signal(SIGTERM)
            #expect(await daemon.waitForExit(seconds: 30) == 0, "\(daemon.log)")
        } catch {
            try? await server.remove()
            throw error
        }
        try await server.remove()
    }
}
