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

/// The HTTP layer over an in-memory engine: what each route asks of the engine, and how the engine's answers and
/// errors reach a client. No daemon, store or git is involved.
@Suite struct RouteTests {
    func test(
        _ engine: MemoryEngine, configuration: ServerConfiguration = ServerConfiguration(),
        _ body: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let router = buildRouter(
            engine: engine, configuration: configuration, registry: PrometheusCollectorRegistry(),
            keepAliveInterval: .seconds(1))
        try await Application(router: router).test(.router, body)
    }

    /// An event stream's text without the keep-alive comments, which come whenever a slow machine lets a second
    /// pass between two events.
    static func withoutKeepAlives(_ text: String) -> String {
        text.replacingOccurrences(of: ": keep-alive\n\n", with: "")
    }

    @Test func everyObjectHasEveryFieldOfTheContract() async throws {
        let engine = MemoryEngine()
        let deployment = engine.recordDeployment(
            app: "hello", status: .failed, error: "build step 'make' failed (exit 2)")
        try await test(engine) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get) { response in
                let app = try #require((response.json["apps"] as? [[String: Any]])?.first)
                #expect(
                    Set(app.keys) == [
                        "name", "repository", "branch", "deploy_to", "status", "current", "last_deployment", "queued",
                        "config_error", "processes",
                    ])
                #expect(app["current"] is NSNull && app["config_error"] is NSNull)
                let last = try #require(app["last_deployment"] as? [String: Any])
                #expect(last["steps"] == nil, "listings carry deployments without steps")
                #expect(last["error"] as? String == "build step 'make' failed (exit 2)")
                #expect(last["created_at"] as? String == "2026-11-25T10:00:00Z")
                #expect(last["started_at"] is NSNull && last["rolled_back_to"] is NSNull)
            }
            try await client.execute(uri: "/api/v1/deployments/\(deployment.id)", method: .get) { response in
                #expect(response.json["steps"] as? [Any] != nil, "one deployment carries its steps")
                #expect(response.json["short_commit"] as? String == "ccccccc")
            }
            try await client.execute(uri: "/api/v1/nodes", method: .get) { response in
                let node = try #require((response.json["nodes"] as? [[String: Any]])?.first)
                #expect(Set(node.keys) == ["name", "version", "started_at", "last_seen", "status"])
                #expect(node["status"] as? String == "up")
            }
        }
    }

    /// Each of Deploy's errors becomes its own status and code, and its words reach the client as they are.
    @Test(arguments: [
        (DeployError.unknownApp("nope"), 404, "not_found", "there is no app named 'nope'"),
        (.notFound("there is no deployment 9"), 404, "not_found", "there is no deployment 9"),
        (.conflict("release 3 is already live"), 409, "conflict", "release 3 is already live"),
        (.configuration("hello's pipeline file is invalid"), 409, "conflict", "hello's pipeline file is invalid"),
        (.invalid("'x' is not a commit sha"), 400, "bad_request", "'x' is not a commit sha"),
        (.unauthenticated, 401, "unauthorized", "the delivery could not be authenticated"),
        (
            .repositoryUnavailable("fetching hello's repository failed: timed out"), 502, "repository_unavailable",
            "fetching hello's repository failed: timed out"
        ),
        (.store(.full), 507, "storage_full", "the state disk is full"),
        (
            .store(.unavailable("connection refused")), 503, "store_unavailable",
            "the store cannot be reached just now; try again shortly"
        ),
        (
            .store(.failed("SQLITE_CORRUPT: database disk image is malformed")), 500, "internal",
            "the store could not be read or written"
        ),
        (.internalFailure("cannot read hello's mirror"), 500, "internal", "cannot read hello's mirror"),
    ])
    func everyDeployErrorIsMappedOnPurpose(error: DeployError, status: Int, code: String, message: String) async throws
    {
        let engine = MemoryEngine()
        engine.state.withLock { $0.failure = error }
        try await test(engine) { client in
            try await client.execute(uri: "/api/v1/apps/hello", method: .get) { response in
                #expect(Int(response.status.code) == status)
                #expect(response.json[path: "error.code"] as? String == code)
                #expect(response.json[path: "error.message"] as? String == message)
                #expect(!response.text.contains("SQLITE"))
            }
        }
    }

    @Test func deployRollbackAndCancelAnswer202WithTheDeployment() async throws {
        let engine = MemoryEngine()
        try await test(engine) { client in
            try await client.execute(
                uri: "/api/v1/apps/hello/deploy", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"ref": "v1.2"}"#)
            ) { response in
                #expect(response.status == .accepted)
                #expect(response.json["status"] as? String == "queued")
            }
            try await client.execute(uri: "/api/v1/apps/hello/rollback", method: .post) { response in
                #expect(response.status == .conflict, "an empty body asks for the previous release")
            }
            try await client.execute(
                uri: "/api/v1/apps/hello/rollback", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"to": 1}"#)
            ) { response in
                #expect(response.status == .accepted)
            }
            try await client.execute(uri: "/api/v1/deployments/1/cancel", method: .post) { response in
                #expect(response.status == .accepted)
                #expect(response.json["status"] as? String == "cancelled")
            }
            try await client.execute(uri: "/api/v1/deployments/1/cancel", method: .post) { response in
                #expect(response.status == .conflict)
            }
        }
    }

    @Test func thePushHookHandsTheNoticeToTheEngine() async throws {
        let engine = MemoryEngine()
        let after = String(repeating: "b", count: 40)
        try await test(engine) { client in
            try await client.execute(
                uri: "/hooks/push", method: .post,
                body: jsonBody(["app": "hello", "ref": "refs/heads/main", "before": "0", "after": after])
            ) { response in
                #expect(response.status == .accepted)
                #expect((response.json["deployments"] as? [Any])?.count == 1)
            }
        }
        #expect(
            engine.state.value.pushes == [PushNotice(app: "hello", ref: "refs/heads/main", before: "0", after: after)])
    }

    /// A forge delivery reaches the engine with its headers (by lower-case name) and its body as sent; the answer
    /// follows the engine's outcome.
    @Test func aForgeDeliveryIsHandedOverWholeAndAnsweredByItsOutcome() async throws {
        let body = #"{"ref": "refs/heads/main"}"#
        let outcomes: [(ForgeOutcome, HTTPResponse.Status, String)] = [
            (.ping, .ok, #"{"status":"ok"}"#),
            (.ignored, .accepted, #"{"matched":[],"deployments":[]}"#),
            (.accepted(matched: ["hello"], deployments: []), .accepted, #"{"matched":["hello"],"deployments":[]}"#),
        ]
        for (outcome, status, answer) in outcomes {
            let engine = MemoryEngine(forgeOutcome: outcome)
            try await test(engine) { client in
                try await client.execute(
                    uri: "/hooks/gitea", method: .post,
                    headers: [HTTPField.Name("X-Gitea-Event")!: "push", HTTPField.Name("X-Gitea-Signature")!: "abc"],
                    body: ByteBuffer(string: body)
                ) { response in
                    #expect(response.status == status)
                    #expect(response.text == answer)
                }
            }
            let delivery = try #require(engine.state.value.deliveries.first)
            #expect(delivery.forge == .gitea)
            #expect(delivery.headers["x-gitea-event"] == "push" && delivery.headers["x-gitea-signature"] == "abc")
            #expect(delivery.body == Array(body.utf8))
        }
    }

    /// The log as text, and as SSE: one event per line with its line number as id, resuming after `Last-Event-ID`,
    /// then `event: end` with the deployment.
    @Test func theLogRouteStreamsTextAndEvents() async throws {
        let engine = MemoryEngine()
        let deployment = engine.recordDeployment(app: "hello", status: .succeeded, log: ["one", "two", "three"])
        try await test(engine) { client in
            try await client.execute(uri: "/api/v1/deployments/\(deployment.id)/log", method: .get) { response in
                #expect(response.headers[.contentType] == "text/plain; charset=utf-8")
                #expect(response.text == "one\ntwo\nthree\n")
            }
            try await client.execute(
                uri: "/api/v1/deployments/\(deployment.id)/log", method: .get,
                headers: [.accept: "text/event-stream", HTTPField.Name("Last-Event-ID")!: "1"]
            ) { response in
                #expect(response.headers[.contentType] == "text/event-stream; charset=utf-8")
                let events = Self.withoutKeepAlives(response.text)
                #expect(events.hasPrefix("id: 2\ndata: two\n\nid: 3\ndata: three\n\nevent: end\ndata: {"))
                #expect(!events.contains("data: one"))
            }
            try await client.execute(uri: "/api/v1/deployments/99/log", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func theEventStreamCarriesEachDeploymentWithoutSteps() async throws {
        let engine = MemoryEngine()
        engine.recordDeployment(app: "hello", status: .running)
        try await test(engine) { client in
            try await client.execute(uri: "/api/v1/events", method: .get) { response in
                #expect(response.text.hasPrefix(": keep-alive\n\n"), "the stream opens with a comment")
                #expect(Self.withoutKeepAlives(response.text).hasPrefix("event: deployment\ndata: {"))
                #expect(!response.text.contains("\"steps\""))
            }
        }
    }

    /// The list is encoded once per generation of the engine's apps, and again only when that moves.
    @Test func theAppListIsCachedUntilTheEngineChanges() async throws {
        let engine = MemoryEngine()
        try await test(engine) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get) { response in
                #expect((response.json["apps"] as? [[String: Any]])?.first?["last_deployment"] is NSNull)
            }
            engine.recordDeployment(app: "hello", status: .succeeded)
            try await client.execute(uri: "/api/v1/apps", method: .get) { response in
                #expect((response.json["apps"] as? [[String: Any]])?.first?["last_deployment"] is [String: Any])
            }
        }
    }

    /// HEAD wherever GET is served, with GET's status and no body; the SSE routes are answered without starting a
    /// stream.
    @Test func headIsAnsweredOnEveryGetRoute() async throws {
        let engine = MemoryEngine()
        let deployment = engine.recordDeployment(app: "hello", status: .succeeded, log: ["one"])
        let paths = [
            "/healthz", "/metrics", "/", "/api/v1/openapi.yaml", "/api/v1/apps", "/api/v1/apps/hello",
            "/api/v1/apps/hello/deployments", "/api/v1/apps/hello/releases", "/api/v1/nodes",
            "/api/v1/deployments/\(deployment.id)", "/api/v1/deployments/\(deployment.id)/log", "/api/v1/events",
        ]
        try await test(engine) { client in
            for path in paths {
                let get = try await client.execute(uri: path, method: .get) { $0.status }
                try await client.execute(uri: path, method: .head) { response in
                    #expect(response.status == get, "HEAD \(path)")
                    #expect(response.body.readableBytes == 0, "HEAD \(path)")
                }
            }
            try await client.execute(uri: "/api/v1/apps/nope", method: .head) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/api/v1/apps/hello/deploy", method: .get) { response in
                #expect(response.status == .methodNotAllowed)
            }
        }
    }
}

/// The browser rules of the contract, over a real connection so that `Host` travels as browsers send it.
@Suite struct BrowserGuardTests {
    static let host = HTTPField.Name("Host")!
    static let origin = HTTPField.Name("Origin")!
    static let fetchSite = HTTPField.Name("Sec-Fetch-Site")!

    func live(
        allowedHosts: [String] = [], _ body: @Sendable (any TestClientProtocol, Int) async throws -> Void
    ) async throws {
        let router = buildRouter(
            engine: MemoryEngine(), configuration: ServerConfiguration(port: 0, allowedHosts: allowedHosts),
            registry: PrometheusCollectorRegistry(), keepAliveInterval: .seconds(1))
        try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(
            .ahc(.http)
        ) { client in
            try await body(client, client.port ?? 0)
        }
    }

    @Test func aForeignHostIsRefusedSoARebindingPageReadsNothing() async throws {
        try await live(allowedHosts: ["deploy.example.com"]) { client, port in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [Self.host: "evil.example:\(port)"]) {
                #expect($0.status.code == 421)
                #expect($0.json[path: "error.code"] as? String == "misdirected_request")
            }
            try await client.execute(uri: "/", method: .get, headers: [Self.host: "127.evil.example"]) {
                #expect($0.status.code == 421, "a name that starts like an address is still a name")
            }
            for allowed in ["127.0.0.1:\(port)", "localhost:\(port)", "[::1]:\(port)", "Deploy.Example.com"] {
                try await client.execute(uri: "/api/v1/apps", method: .get, headers: [Self.host: allowed]) {
                    #expect($0.status == .ok, "\(allowed)")
                }
            }
        }
    }

    @Test func aCrossSiteSimplePostIsRefusedAndTheDashboardsOwnIsNot() async throws {
        try await live { client, port in
            // What a form on another page sends: text/plain, the page's Origin, Sec-Fetch-Site: cross-site.
            try await client.execute(
                uri: "/api/v1/apps/hello/rollback", method: .post,
                headers: [
                    Self.host: "127.0.0.1:\(port)", Self.origin: "http://attacker.example",
                    Self.fetchSite: "cross-site", .contentType: "text/plain",
                ],
                body: ByteBuffer(string: #"{"to": 1}"#)
            ) {
                #expect($0.status == .forbidden)
                #expect($0.json[path: "error.code"] as? String == "forbidden")
            }
            // Another port of localhost is the same site to a browser, and still another page.
            try await client.execute(
                uri: "/api/v1/apps/hello/deploy", method: .post,
                headers: [
                    Self.host: "localhost:\(port)", Self.origin: "http://localhost:3000", Self.fetchSite: "same-site",
                ]
            ) { #expect($0.status == .forbidden) }
            try await client.execute(
                uri: "/hooks/push", method: .post,
                headers: [Self.host: "127.0.0.1:\(port)", Self.origin: "null", .contentType: "application/json"],
                body: jsonBody(["app": "hello", "ref": "refs/heads/main", "before": "0", "after": "b"])
            ) { #expect($0.status == .forbidden, "a sandboxed page's null origin is another page") }
            // Without the browser headers but with a form's body type.
            try await client.execute(
                uri: "/api/v1/apps/hello/deploy", method: .post, headers: [.contentType: "text/plain"],
                body: ByteBuffer(string: #"{"ref": "main"}"#)
            ) {
                #expect($0.status == .unsupportedMediaType)
                #expect($0.json[path: "error.code"] as? String == "unsupported_media_type")
            }
            // The dashboard's own request: same origin, JSON.
            try await client.execute(
                uri: "/api/v1/apps/hello/deploy", method: .post,
                headers: [
                    Self.host: "127.0.0.1:\(port)", Self.origin: "http://127.0.0.1:\(port)",
                    Self.fetchSite: "same-origin", .contentType: "application/json; charset=utf-8",
                ],
                body: ByteBuffer(string: #"{"ref": "main"}"#)
            ) { #expect($0.status == .accepted) }
            // The CLI's: no browser headers, JSON or no body at all.
            try await client.execute(uri: "/api/v1/deployments/1/cancel", method: .post) {
                #expect($0.status == .accepted)
            }
        }
    }

    @Test func forgeWebhooksKeepTheirOwnBodyTypes() async throws {
        try await live { client, port in
            try await client.execute(
                uri: "/hooks/github", method: .post,
                headers: [
                    Self.host: "127.0.0.1:\(port)", .contentType: "application/x-www-form-urlencoded",
                    HTTPField.Name("X-GitHub-Event")!: "ping",
                ],
                body: ByteBuffer(string: "payload=%7B%7D")
            ) { #expect($0.status != .forbidden && $0.status != .unsupportedMediaType, "\($0.status)") }
        }
    }
}
