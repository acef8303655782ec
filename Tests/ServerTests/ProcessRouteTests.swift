import Deploy
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import Server
import SlipwayAPI
import TestSupport
import Testing

/// The processes' routes over an in-memory engine: the list, a process's log, a restart.
@Suite struct ProcessRouteTests {
    func test(
        _ engine: MemoryEngine, token: String? = nil, _ body: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let router = buildRouter(
            engine: engine, configuration: ServerConfiguration(token: token), registry: PrometheusCollectorRegistry(),
            keepAliveInterval: .seconds(1))
        try await Application(router: router).test(.router, body)
    }

    static let web = API.Process(
        name: "web", instance: 1, pid: 4242, port: 40123, status: .running, release: 7,
        startedAt: Date(timeIntervalSince1970: 1_795_600_800), restarts: 2)

    @Test func listsTheProcessesWithEveryFieldOfTheContract() async throws {
        let engine = MemoryEngine()
        engine.state.withLock { $0.processes["hello"] = [Self.web] }
        try await test(engine) { client in
            try await client.execute(uri: "/api/v1/apps/hello/processes", method: .get) { response in
                #expect(response.status == .ok)
                let list = try #require(response.json["processes"] as? [[String: Any]])
                #expect(
                    Set(list[0].keys) == [
                        "name", "instance", "pid", "port", "status", "release", "started_at", "restarts",
                    ])
                #expect(list[0]["status"] as? String == "running")
                #expect(list[0]["started_at"] as? String == "2026-11-25T10:00:00Z")
            }
            try await client.execute(uri: "/api/v1/apps/nope/processes", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func theLogIsTextOrEvents() async throws {
        let engine = MemoryEngine()
        engine.state.withLock { $0.processLogs["hello/web"] = ["one", "two"] }
        try await test(engine) { client in
            try await client.execute(uri: "/api/v1/apps/hello/processes/web/log", method: .get) { response in
                #expect(response.headers[.contentType] == "text/plain; charset=utf-8")
                #expect(response.text == "one\ntwo\n")
            }
            try await client.execute(
                uri: "/api/v1/apps/hello/processes/web/log", method: .get, headers: [.accept: "text/event-stream"]
            ) { response in
                #expect(RouteTests.withoutKeepAlives(response.text) == "data: one\n\ndata: two\n\n")
            }
            try await client.execute(uri: "/api/v1/apps/hello/processes/db/log", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func aRestartNeedsTheTokenAndNamesItsProcess() async throws {
        let engine = MemoryEngine()
        try await test(engine, token: "t0k3n") { client in
            try await client.execute(uri: "/api/v1/apps/hello/restart", method: .post) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(
                uri: "/api/v1/apps/hello/restart", method: .post,
                headers: [.authorization: "Bearer t0k3n", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"process": "web"}"#)
            ) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(
                uri: "/api/v1/apps/hello/restart", method: .post, headers: [.authorization: "Bearer t0k3n"]
            ) { response in
                #expect(response.status == .ok)
            }
        }
        #expect(engine.state.withLock { $0.restarts.map(\.process) } == ["web", nil])
    }
}
