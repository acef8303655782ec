import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import SlipwayAPI
import SlipwayClient
import TestSupport
import Testing
import Yams

@testable import Deploy

@Suite struct APITests {
    @Test func healthMetricsDashboardAndOpenAPI() async throws {
        let fixture = try await ServerFixture()
        try await fixture.test { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.json["status"] as? String == "ok")
            }
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
                #expect(response.text.contains("<html"))
            }
            try await client.execute(uri: "/api/v1/openapi.yaml", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.text.hasPrefix("openapi: 3.1"))
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    /// Fails when a route exists that the OpenAPI document does not describe, or the other way round.
    @Test func theOpenAPIDocumentDescribesEveryRoute() async throws {
        let fixture = try await ServerFixture()
        let document = try #require(try Yams.load(yaml: fixture.openAPIText) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var documented: Set<String> = []
        for (path, item) in paths {
            for method in (item as? [String: Any])?.keys ?? [:].keys
            where ["get", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let served = Set(
            fixture.router.routes.map { "\($0.method) \($0.path.description.hasPrefix("/") ? "" : "/")\($0.path)" })
        #expect(
            served.subtracting(documented).isEmpty,
            "routes missing from openapi.yaml: \(served.subtracting(documented).sorted())")
        #expect(
            documented.subtracting(served).isEmpty,
            "documented routes the server lacks: \(documented.subtracting(served).sorted())")
        #expect(served.count >= 19)
    }

    @Test func appsAreListedWithEveryFieldEvenWhenEmpty() async throws {
        let fixture = try await ServerFixture(apps: ["hello": "branch: main\n", "other": ""])
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/apps", method: .get) { response in
                #expect(response.status == .ok)
                let apps = try #require(response.json["apps"] as? [[String: Any]])
                #expect(apps.map { $0["name"] as? String } == ["hello", "other"])
                let hello = apps[0]
                #expect(
                    Set(hello.keys) == [
                        "name", "repository", "branch", "deploy_to", "status", "current", "last_deployment", "queued",
                        "config_error", "processes",
                    ])
                #expect(hello["status"] as? String == "idle")
                #expect(hello["current"] is NSNull)
                #expect(hello["last_deployment"] is NSNull)
                #expect(hello["config_error"] is NSNull)
                #expect(hello["queued"] as? Int == 0)
                #expect(hello["repository"] as? String == fixture.origin)
            }
            try await client.execute(uri: "/api/v1/apps/nope", method: .get) { response in
                #expect(response.status == .notFound)
                let error = try #require(response.json["error"] as? [String: Any])
                #expect(error["code"] as? String == "not_found")
                #expect(error["message"] as? String == "there is no app named 'nope'")
            }
            try await client.execute(uri: "/api/v1/no/such/route", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.json[path: "error.code"] as? String == "not_found")
            }
            try await client.execute(uri: "/api/v1/apps/hello/deploy", method: .get) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "POST")
                #expect(response.json[path: "error.code"] as? String == "method_not_allowed")
            }
        }
    }

    @Test func deployFollowAndRollBackThroughTheAPI() async throws {
        let fixture = try await ServerFixture(apps: ["hello": "build:\n  - echo built $SLIPWAY_COMMIT\n"])
        let first = try fixture.push("first")
        try await fixture.test { client in
            let firstID = try await client.execute(uri: "/api/v1/apps/hello/deploy", method: .post) { response in
                #expect(response.status == .accepted)
                #expect(response.json["commit"] as? String == first)
                #expect(response.json["trigger"] as? String == "manual")
                #expect(response.json["status"] as? String == "queued")
                #expect(response.json["steps"] == nil, "a deployment from a listing has no steps")
                return Int64(response.json["id"] as! Int)
            }
            #expect(try await fixture.finished(firstID).status == .succeeded)

            // Nothing older to go back to yet.
            try await client.execute(uri: "/api/v1/apps/hello/rollback", method: .post) { response in
                #expect(response.status == .conflict)
                #expect(response.json[path: "error.code"] as? String == "conflict")
            }

            let second = try fixture.push("second")
            let secondID = try await client.execute(
                uri: "/api/v1/apps/hello/deploy", method: .post, headers: [.contentType: "application/json"],
                body: jsonBody(["ref": "main"])
            ) { response in
                #expect(response.json["commit"] as? String == second)
                return Int64(response.json["id"] as! Int)
            }
            #expect(try await fixture.finished(secondID).status == .succeeded)

            try await client.execute(uri: "/api/v1/deployments/\(secondID)", method: .get) { response in
                #expect(response.status == .ok)
                let steps = try #require(response.json["steps"] as? [[String: Any]])
                #expect(steps.count == 1)
                #expect(
                    Set(steps[0].keys) == [
                        "phase", "name", "status", "exit_code", "started_at", "finished_at", "duration_ms",
                    ])
                #expect(steps[0]["status"] as? String == "succeeded")
                let created = try #require(response.json["created_at"] as? String)
                #expect(created.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"#, options: .regularExpression) != nil)
            }
            try await client.execute(uri: "/api/v1/deployments/\(secondID)/log", method: .get) { response in
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                #expect(response.text.contains("built \(second)"))
            }
            try await client.execute(
                uri: "/api/v1/deployments/\(secondID)/log", method: .get, headers: [.accept: "text/event-stream"]
            ) { response in
                #expect(response.headers[.contentType]?.hasPrefix("text/event-stream") == true)
                #expect(response.text.contains("data: built \(second)\n\n"))
                #expect(response.text.contains("id: 1\ndata: ==> hello: deploy"))
                #expect(response.text.contains("event: end\ndata: {"))
                // What the client commands read from it.
                var parser = EventStreamParser()
                let events = parser.feed(response.text.utf8)
                #expect(events.contains { $0.name == nil && $0.data == "built \(second)" })
                let end = try #require(events.last)
                #expect(end.name == "end" && end.data.contains(#""status":"succeeded""#))
            }
            // A reconnecting client gets only what it missed.
            try await client.execute(
                uri: "/api/v1/deployments/\(secondID)/log", method: .get,
                headers: [.accept: "text/event-stream", HTTPField.Name("Last-Event-ID")!: "3"]
            ) { response in
                #expect(!response.text.contains("id: 3\n"))
                #expect(response.text.contains("id: 4\n"))
            }
            try await client.execute(uri: "/api/v1/apps/hello/releases", method: .get) { response in
                let releases = try #require(response.json["releases"] as? [[String: Any]])
                #expect(releases.map { $0["id"] as? Int } == [Int(secondID), Int(firstID)])
                #expect(releases.map { $0["active"] as? Bool } == [true, false])
                #expect(
                    Set(releases[0].keys) == [
                        "id", "commit", "short_commit", "message", "author", "created_at", "active",
                    ])
            }

            let rollbackID = try await client.execute(
                uri: "/api/v1/apps/hello/rollback", method: .post, headers: [.contentType: "application/json"],
                body: jsonBody(["to": Int(firstID)])
            ) { response in
                #expect(response.status == .accepted)
                #expect(response.json["kind"] as? String == "rollback")
                #expect(response.json["commit"] as? String == first)
                return Int64(response.json["id"] as! Int)
            }
            #expect(try await fixture.finished(rollbackID).status == .succeeded)
            try await client.execute(uri: "/api/v1/apps/hello", method: .get) { response in
                #expect(response.json[path: "current.id"] as? Int == Int(firstID))
                #expect(response.json[path: "last_deployment.id"] as? Int == Int(rollbackID))
            }
            // By commit: back to the second.
            try await client.execute(
                uri: "/api/v1/apps/hello/rollback", method: .post, headers: [.contentType: "application/json"],
                body: jsonBody(["to": String(second.prefix(9))])
            ) { response in
                #expect(response.status == .accepted)
                #expect(response.json["commit"] as? String == second)
            }
            try await client.execute(uri: "/api/v1/deployments/\(firstID)/cancel", method: .post) { response in
                #expect(response.status == .conflict)
            }
            try await client.execute(uri: "/api/v1/deployments/99999/cancel", method: .post) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func theCachedAppListFollowsEveryChange() async throws {
        let fixture = try await ServerFixture()
        try fixture.push("one")
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/apps", method: .get) { response in
                #expect((response.json["apps"] as? [[String: Any]])?.first?["current"] is NSNull)
            }
            let deployment = try await fixture.daemon.intake.deploy(app: "hello", ref: nil)
            _ = try await fixture.finished(deployment.id)
            try await client.execute(uri: "/api/v1/apps", method: .get) { response in
                let app = try #require((response.json["apps"] as? [[String: Any]])?.first)
                #expect((app["current"] as? [String: Any])?["id"] as? Int == Int(deployment.id))
                #expect((app["last_deployment"] as? [String: Any])?["status"] as? String == "succeeded")
            }
            try writeFile(fixture.scratch("pipelines/second.yml"), "repository: \(fixture.origin)\n")
            await fixture.daemon.registry.reload()
            try await client.execute(uri: "/api/v1/apps", method: .get) { response in
                #expect((response.json["apps"] as? [[String: Any]])?.count == 2)
            }
        }
    }

    @Test func pagesDeploymentsNewestFirst() async throws {
        let fixture = try await ServerFixture()
        try fixture.push("one")
        var made: [Int64] = []
        for _ in 0..<5 {
            let deployment = try await fixture.daemon.intake.deploy(app: "hello", ref: nil)
            made.append(try await fixture.finished(deployment.id).id)
        }
        let ids = made
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/apps/hello/deployments?limit=2", method: .get) { response in
                let page = try #require(response.json["deployments"] as? [[String: Any]])
                #expect(page.map { Int64($0["id"] as! Int) } == [ids[4], ids[3]])
            }
            try await client.execute(uri: "/api/v1/apps/hello/deployments?limit=2&before=\(ids[3])", method: .get) {
                response in
                let page = try #require(response.json["deployments"] as? [[String: Any]])
                #expect(page.map { Int64($0["id"] as! Int) } == [ids[2], ids[1]])
            }
            for bad in ["limit=0", "limit=501", "limit=x", "before=-1", "before=abc"] {
                try await client.execute(uri: "/api/v1/apps/hello/deployments?\(bad)", method: .get) { response in
                    #expect(response.status == .badRequest, "\(bad)")
                    #expect(response.json[path: "error.code"] as? String == "bad_request")
                }
            }
            try await client.execute(uri: "/api/v1/deployments/abc", method: .get) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test func badBodiesGetClearErrors() async throws {
        var configuration = ServerConfiguration()
        configuration.maxBody = 1024
        let fixture = try await ServerFixture(configuration: configuration)
        try fixture.push("one")
        try await fixture.test { client in
            try await client.execute(
                uri: "/api/v1/apps/hello/deploy", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: "{not json")
            ) { response in
                #expect(response.status == .badRequest)
                #expect((response.json[path: "error.message"] as? String)?.contains("not valid JSON") == true)
            }
            try await client.execute(
                uri: "/api/v1/apps/hello/deploy", method: .post, headers: [.contentType: "application/json"],
                body: jsonBody(["ref": 42])
            ) {
                response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(
                uri: "/api/v1/apps/hello/deploy", method: .post, headers: [.contentType: "application/json"],
                body: jsonBody(["ref": "no-such-branch"])
            ) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(
                uri: "/api/v1/apps/hello/rollback", method: .post, headers: [.contentType: "application/json"],
                body: jsonBody(["to": "zz"])
            ) {
                response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(
                uri: "/api/v1/apps/hello/rollback", method: .post, headers: [.contentType: "application/json"],
                body: jsonBody(["to": ["x"]])
            ) {
                response in
                #expect(response.status == .badRequest)
            }
            let big = ByteBuffer(string: "{\"ref\": \"" + String(repeating: "a", count: 4096) + "\"}")
            try await client.execute(
                uri: "/api/v1/apps/hello/deploy", method: .post, headers: [.contentType: "application/json"], body: big
            ) { response in
                #expect(response.status == .contentTooLarge)
                #expect(response.json[path: "error.code"] as? String == "payload_too_large")
            }
            try await client.execute(uri: "/hooks/github", method: .post, body: big) { response in
                #expect(response.status == .contentTooLarge)
            }
            try await client.execute(
                uri: "/hooks/push", method: .post,
                body: jsonBody(["app": "nope", "ref": "refs/heads/main", "after": String(repeating: "a", count: 40)])
            ) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/hooks/push", method: .post, body: jsonBody(["app": "hello"])) { response in
                #expect(response.status == .badRequest)
            }
        }
        // Nothing above queued anything.
        #expect(try await fixture.daemon.context.store.deployments(app: "hello").isEmpty)
    }

    @Test func aLogIsServedWholeLinesOnlyAndBytesThatAreNotUTF8DoNotHideIt() async throws {
        let fixture = try await ServerFixture(apps: ["hello": ""])
        var inserted = try await fixture.daemon.context.store.insert(
            DeploymentRequest(app: "hello", trigger: .manual, ref: "main", commit: "abc"))
        inserted.status = .succeeded
        try await fixture.daemon.context.store.save(inserted)
        let deployment = inserted
        let path = fixture.daemon.context.logPath(deployment: deployment.id)
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // A byte that is not UTF-8, and a last line still being written (no newline yet).
        try Data("one\n".utf8 + [0xFF] + Data("two\nthr".utf8)).write(to: URL(fileURLWithPath: path))
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/deployments/\(deployment.id)/log", method: .get) { response in
                #expect(response.text == "one\n\u{FFFD}two\nthr")
            }
            try await client.execute(
                uri: "/api/v1/deployments/\(deployment.id)/log", method: .get, headers: [.accept: "text/event-stream"]
            ) { response in
                #expect(response.text.contains("id: 1\ndata: one\n\n"))
                #expect(response.text.contains("id: 2\ndata: \u{FFFD}two\n\n"))
                #expect(!response.text.contains("thr"))
            }
        }
    }

    /// A secret in a deployment's error reads `***` wherever the deployment leaves the daemon: the app list, the
    /// app, the history, the deployment itself, the end of its log stream, and the events.
    @Test func deploymentsLeaveTheDaemonWithTheirAppsSecretsMasked() async throws {
        let secret = "hush-hush-123"
        let fixture = try await ServerFixture(
            apps: ["hello": "webhook_secret: \(secret)\nbuild:\n  - \"false # \(secret)\"\n"])
        try fixture.push("x")
        let events = fixture.daemon.events()
        let failed = try await fixture.daemon.deploy(app: "hello", ref: nil)
        let finished = try await fixture.finished(failed.id)
        #expect(finished.status == .failed)
        #expect(finished.error == "build step 'false # ***' failed (exit 1)")
        var seen: [String] = []
        for await event in events where event.id == failed.id {
            seen.append(event.error ?? "")
            if event.status.isFinished { break }
        }
        #expect(seen.last == "build step 'false # ***' failed (exit 1)")
        #expect(!seen.contains { $0.contains(secret) })
        try await fixture.test { client in
            for uri in [
                "/api/v1/apps", "/api/v1/apps/hello", "/api/v1/apps/hello/deployments",
                "/api/v1/deployments/\(failed.id)", "/api/v1/deployments/\(failed.id)/log",
            ] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .ok, "\(uri)")
                    #expect(!response.text.contains(secret), "\(uri): \(response.text)")
                }
            }
            try await client.execute(
                uri: "/api/v1/deployments/\(failed.id)/log", method: .get, headers: [.accept: "text/event-stream"]
            ) { response in
                #expect(response.text.contains("event: end\ndata: {"))
                #expect(response.text.contains("false # ***"))
                #expect(!response.text.contains(secret))
            }
        }
    }

    @Test func aTokenGuardsEveryChange() async throws {
        let fixture = try await ServerFixture(configuration: ServerConfiguration(token: "s3cret-token"))
        try fixture.push("one")
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/apps", method: .get) { response in
                #expect(response.status == .ok, "reading needs no token without --private")
            }
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: "s3cret-token"]] {
                try await client.execute(uri: "/api/v1/apps/hello/deploy", method: .post, headers: headers) {
                    response in
                    #expect(response.status == .unauthorized)
                    #expect(response.json[path: "error.code"] as? String == "unauthorized")
                }
                // The router ignores empty segments, so these reach the same handlers and must be guarded too.
                for uri in [
                    "/hooks/push", "/hooks/push/", "/hooks//push", "//api/v1/apps/hello/deploy",
                    "/api/v1//apps/hello/deploy/",
                ] {
                    try await client.execute(uri: uri, method: .post, headers: headers) { response in
                        #expect(response.status == .unauthorized, "\(uri)")
                    }
                }
            }
            try await client.execute(
                uri: "/api/v1/apps/hello/deploy", method: .post, headers: [.authorization: "Bearer s3cret-token"]
            ) { response in
                #expect(response.status == .accepted)
            }
        }
        #expect(try await fixture.daemon.context.store.deployments(app: "hello").count == 1)
    }

    @Test func privateModeGuardsReadsToo() async throws {
        let fixture = try await ServerFixture(configuration: ServerConfiguration(token: "tok", isPrivate: true))
        try await fixture.test { client in
            for uri in [
                "/api/v1/apps", "/api/v1/apps/hello", "/metrics", "/api/v1/openapi.yaml", "/api/v1/events",
                "/healthz/x", "//api/v1/apps",
            ] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .unauthorized, "\(uri)")
                }
            }
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer tok"]) {
                response in
                #expect(response.status == .ok)
            }
            for uri in ["/healthz", "/"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .ok, "\(uri) stays open")
                }
            }
        }
    }

    @Test func refusesToListenBeyondLoopbackWithoutAToken() throws {
        #expect(throws: ConfigurationError.self) { try ServerConfiguration(host: "0.0.0.0").validate() }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration(host: "192.168.1.5").validate() }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration(isPrivate: true).validate() }
        try ServerConfiguration(host: "0.0.0.0", token: "t").validate()
        try ServerConfiguration(host: "127.0.0.1").validate()
        try ServerConfiguration(host: "::1").validate()
        try ServerConfiguration(host: "localhost").validate()
    }

    /// An app whose file breaks keeps its last good pipeline for what the API shows, but a deploy is not made with
    /// it: the deployment fails at once with the file's error, in its record and its log.
    @Test func anAppWithABrokenFileShowsConfigErrorAndRefusesToDeployWithAnOlderFile() async throws {
        let fixture = try await ServerFixture(apps: ["hello": "build:\n  - echo good\n"])
        try fixture.push("one")
        try writeFile(fixture.scratch("pipelines/hello.yml"), "repository: \(fixture.origin)\nkepp_releases: 2\n")
        try writeFile(fixture.scratch("pipelines/broken.yml"), "repository: [\n")
        await fixture.daemon.registry.reload()
        try await fixture.test { client in
            try await client.execute(uri: "/api/v1/apps/hello", method: .get) { response in
                #expect(response.json["status"] as? String == "config_error")
                #expect(
                    (response.json["config_error"] as? String)?.contains("hello.yml:2:1: unknown key 'kepp_releases'")
                        == true)
            }
            try await client.execute(uri: "/api/v1/apps/broken", method: .get) { response in
                #expect(response.json["status"] as? String == "config_error")
            }
            let id = try await client.execute(uri: "/api/v1/apps/hello/deploy", method: .post) { response in
                #expect(response.status == .accepted)
                return Int64(response.json["id"] as! Int)
            }
            let refused = try await fixture.finished(id)
            #expect(refused.status == .failed)
            #expect(refused.error?.contains("hello.yml:2:1: unknown key 'kepp_releases'") == true)
            let log = try String(contentsOfFile: fixture.daemon.context.logPath(deployment: id), encoding: .utf8)
            #expect(log.contains("hello.yml:2:1: unknown key 'kepp_releases'"))
            #expect(!log.contains("good"), "nothing of the older file ran")
            // An app whose file was never valid cannot deploy.
            try await client.execute(uri: "/api/v1/apps/broken/deploy", method: .post) { response in
                #expect(response.status == .conflict)
            }
        }
        try FileManager.default.removeItem(atPath: fixture.scratch("pipelines/broken.yml"))
        await fixture.daemon.registry.reload()
        #expect(fixture.daemon.registry.app("broken") == nil)
    }

    @Test func metricsCountDeploymentsAndDeliveries() async throws {
        let fixture = try await ServerFixture()
        try fixture.push("one")
        let deployment = try await fixture.daemon.intake.deploy(app: "hello", ref: nil)
        _ = try await fixture.finished(deployment.id)
        try await fixture.test { client in
            try await client.execute(
                uri: "/hooks/github", method: .post, headers: [HTTPField.Name("X-GitHub-Event")!: "push"],
                body: jsonBody([:])
            ) { _ in }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = response.text
                #expect(text.contains(#"slipway_deployments_total{app="hello",kind="deploy",status="succeeded"} 1"#))
                #expect(text.contains("slipway_deployment_duration_seconds"))
                #expect(text.contains("slipway_fetch_duration_seconds"))
                #expect(text.contains(#"slipway_webhook_deliveries_total{provider="github",result="unauthorized"} 1"#))
                #expect(text.contains("slipway_queue_depth"))
            }
        }
    }
}

extension ServerFixture {
    var openAPIText: String {
        get throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
            return try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        }
    }

    /// A step that redraws a progress bar with carriage returns, and ends lines with `\r\n` and `\r\r\n`: a
    /// spec-following SSE client gets exactly the text log's lines with their line numbers as ids, followed live
    /// and replayed, and `Last-Event-ID` resumes at the right line.
    @Test func carriageReturnsNeverSplitOrShiftTheEvents() async throws {
        let build = #"""
            build:
              - printf 'start\n10%%\r50%%\r100%%\nwindows\r\nold mac\r\r\n'
              - while [ ! -f "$SLIPWAY_SHARED_DIR/go" ]; do sleep 0.05; done
              - printf 'after\r\nbar\r\rend\n'

            """#
        let fixture = try await ServerFixture(apps: ["hello": build])
        try fixture.push("progress")
        let deployment = try await fixture.daemon.deploy(app: "hello", ref: nil)
        let uri = "/api/v1/deployments/\(deployment.id)/log"
        @Sendable func events(_ text: String) -> [(id: Int, data: String)] {
            var parser = EventStreamParser()
            return parser.feed(text.utf8).compactMap { event in event.id.flatMap(Int.init).map { ($0, event.data) } }
        }
        try await fixture.test { client in
            async let live = client.execute(uri: uri, method: .get, headers: [.accept: "text/event-stream"]) {
                $0.text
            }
            try await Task.sleep(for: .milliseconds(300))
            try writeFile(fixture.apps.deployTo("hello") + "/shared/go", "")
            let followed = events(try await live)
            _ = try await fixture.finished(deployment.id)
            let text = try await client.execute(uri: uri, method: .get) { $0.text }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            lines.removeLast()
            #expect(!text.contains("\r"))
            #expect(lines.contains("100%") && lines.contains("windows") && lines.contains("old mac"))
            #expect(lines.contains("after") && lines.contains("end"))
            #expect(followed.map(\.data) == lines)
            #expect(followed.map(\.id) == Array(1...lines.count))
            let replayed = events(
                try await client.execute(uri: uri, method: .get, headers: [.accept: "text/event-stream"]) { $0.text })
            #expect(replayed.map(\.data) == lines)
            let resumed = events(
                try await client.execute(
                    uri: uri, method: .get,
                    headers: [.accept: "text/event-stream", HTTPField.Name("Last-Event-ID")!: "3"]
                ) { $0.text })
            #expect(resumed.map(\.id) == Array(4...lines.count))
            #expect(resumed.map(\.data) == Array(lines.dropFirst(3)))
        }
    }
}
