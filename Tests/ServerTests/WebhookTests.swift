import Crypto
import Deploy
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import TestSupport
import Testing

/// Payloads shaped like each forge's documented push example, trimmed to a realistic core. The repository's
/// clone URL is the test's origin (a `file://` URL), because the daemon fetches from it.
enum ForgeExamples {
    static func github(ref: String, before: String, after: String, cloneURL: String) -> [String: Any] {
        [
            "ref": ref, "before": before, "after": after, "created": false, "deleted": false, "forced": false,
            "compare": "https://github.com/octo-org/hello/compare/\(before.prefix(12))...\(after.prefix(12))",
            "repository": [
                "id": 186_853_002, "name": "hello", "full_name": "octo-org/hello", "private": false,
                "html_url": "https://github.com/octo-org/hello", "clone_url": cloneURL,
                "ssh_url": "git@github.com:octo-org/hello.git", "git_url": "git://github.com/octo-org/hello.git",
                "default_branch": "main", "owner": ["login": "octo-org", "id": 1],
            ] as [String: Any],
            "pusher": ["name": "octocat", "email": "octocat@github.com"],
            "sender": ["login": "octocat", "id": 583231],
            "head_commit": ["id": after, "message": "Update README", "timestamp": "2026-11-25T10:00:00Z"],
            "commits": [["id": after, "message": "Update README", "added": [], "removed": [], "modified": ["README.md"]]],
        ]
    }

    static func gitlab(ref: String, before: String, after: String, cloneURL: String) -> [String: Any] {
        [
            "object_kind": "push", "event_name": "push", "before": before, "after": after, "ref": ref,
            "checkout_sha": after, "user_id": 4, "user_name": "John Smith", "user_username": "jsmith",
            "project_id": 15,
            "project": [
                "id": 15, "name": "Hello", "web_url": "http://example.com/mike/hello", "git_ssh_url": "git@example.com:mike/hello.git",
                "git_http_url": cloneURL, "namespace": "Mike", "path_with_namespace": "mike/hello", "default_branch": "main",
            ] as [String: Any],
            "repository": [
                "name": "Hello", "url": "git@example.com:mike/hello.git", "homepage": "http://example.com/mike/hello",
                "git_http_url": cloneURL, "git_ssh_url": "git@example.com:mike/hello.git",
            ],
            "commits": [["id": after, "message": "Update Catalan translation", "timestamp": "2026-11-25T10:00:00+02:00"]],
            "total_commits_count": 1,
        ]
    }

    static func gitea(ref: String, before: String, after: String, cloneURL: String) -> [String: Any] {
        [
            "ref": ref, "before": before, "after": after,
            "compare_url": "http://localhost:3000/gitea/webhooks/compare/\(before)...\(after)",
            "commits": [["id": after, "message": "Webhooks Yay!", "url": "http://localhost:3000/gitea/webhooks/commit/\(after)"]],
            "repository": [
                "id": 140, "name": "webhooks", "full_name": "gitea/webhooks", "html_url": "http://localhost:3000/gitea/webhooks",
                "ssh_url": "ssh://gitea@localhost:2222/gitea/webhooks.git", "clone_url": cloneURL, "default_branch": "main",
                "owner": ["id": 1, "login": "gitea"],
            ] as [String: Any],
            "pusher": ["id": 1, "login": "gitea"], "sender": ["id": 1, "login": "gitea"],
        ]
    }

    /// Bitbucket Cloud's `repo:push`; `cloneURL` is given as the repository's clone link.
    static func bitbucket(ref: String, before: String, after: String, cloneURL: String) -> [String: Any] {
        let branch = ref.hasPrefix("refs/heads/") ? String(ref.dropFirst("refs/heads/".count)) : ref
        return [
            "actor": ["display_name": "Emma", "type": "user"],
            "repository": [
                "type": "repository", "name": "hello", "full_name": "team/hello", "uuid": "{0f0a1c1e-7b4a-4b1a-9f6f-2a4d3e2b1c0d}",
                "links": ["html": ["href": "https://bitbucket.org/team/hello"], "clone": [["name": "https", "href": cloneURL]]],
            ] as [String: Any],
            "push": [
                "changes": [
                    [
                        "old": ["type": "branch", "name": branch, "target": ["type": "commit", "hash": before]],
                        "new": ["type": "branch", "name": branch, "target": ["type": "commit", "hash": after, "message": "Update"]],
                        "created": false, "closed": false, "forced": false,
                    ] as [String: Any]
                ]
            ],
        ]
    }

    static func payload(_ forge: String, ref: String, before: String, after: String, cloneURL: String) -> [String: Any] {
        switch forge {
        case "github": github(ref: ref, before: before, after: after, cloneURL: cloneURL)
        case "gitlab": gitlab(ref: ref, before: before, after: after, cloneURL: cloneURL)
        case "gitea": gitea(ref: ref, before: before, after: after, cloneURL: cloneURL)
        default: bitbucket(ref: ref, before: before, after: after, cloneURL: cloneURL)
        }
    }

    /// The headers a forge sends: its event header, a delivery id, and its signature of `body` with `secret`.
    static func headers(_ forge: String, event: String? = nil, body: [UInt8], secret: String?, delivery: String) -> HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json"]
        func set(_ name: String, _ value: String) { headers[HTTPField.Name(name)!] = value }
        let signature = secret.map { secret in
            HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
                .map { String(format: "%02x", $0) }.joined()
        }
        switch forge {
        case "github":
            set("X-GitHub-Event", event ?? "push")
            set("X-GitHub-Delivery", delivery)
            if let signature { set("X-Hub-Signature-256", "sha256=\(signature)") }
        case "gitlab":
            set("X-Gitlab-Event", event ?? "Push Hook")
            set("X-Gitlab-Event-UUID", delivery)
            if let secret { set("X-Gitlab-Token", secret) }
        case "gitea":
            set("X-Gitea-Event", event ?? "push")
            set("X-Gitea-Delivery", delivery)
            if let signature { set("X-Gitea-Signature", signature) }
        default:
            set("X-Event-Key", event ?? "repo:push")
            set("X-Request-Id", delivery)
            if let signature { set("X-Hub-Signature", "sha256=\(signature)") }
        }
        return headers
    }
}

@Suite struct WebhookTests {
    static let forges = ["github", "gitlab", "gitea", "bitbucket"]

    func deliver(
        _ client: any TestClientProtocol, _ forge: String, payload: [String: Any], secret: String?, delivery: String = UUID().uuidString,
        event: String? = nil, tamper: Bool = false
    ) async throws -> TestResponse {
        var body = Array(try JSONSerialization.data(withJSONObject: payload))
        let headers = ForgeExamples.headers(forge, event: event, body: body, secret: secret, delivery: delivery)
        if tamper { body.append(contentsOf: Array(" ".utf8)) }
        return try await client.execute(uri: "/hooks/\(forge)", method: .post, headers: headers, body: ByteBuffer(bytes: body))
    }

    @Test(arguments: forges)
    func aSignedPushDeploysAndEverythingElseDoesNot(forge: String) async throws {
        let fixture = try await ServerFixture(configuration: ServerConfiguration(webhookSecret: "daemon-secret"))
        let first = try fixture.push("first")
        let url = "file://" + fixture.origin
        let zeros = String(repeating: "0", count: 40)
        try await fixture.test { client in
            // A good signature: the app matches and deploys.
            let push = ForgeExamples.payload(forge, ref: "refs/heads/main", before: zeros, after: first, cloneURL: url)
            let good = try await deliver(client, forge, payload: push, secret: "daemon-secret", delivery: "d-1")
            #expect(good.status == .accepted)
            #expect(good.json["matched"] as? [String] == ["hello"])
            let deployments = try #require(good.json["deployments"] as? [[String: Any]])
            #expect(deployments.count == 1)
            #expect(deployments.first?["trigger"] as? String == "webhook")
            #expect(deployments.first?["commit"] as? String == first)
            let id = Int64(try #require(deployments.first?["id"] as? Int))
            #expect(try await fixture.finished(id).status == .succeeded)

            // The same delivery again does nothing.
            let again = try await deliver(client, forge, payload: push, secret: "daemon-secret", delivery: "d-1")
            #expect(again.status == .accepted)
            #expect(again.json["matched"] as? [String] == [])
            #expect((again.json["deployments"] as? [Any])?.isEmpty == true)

            // A bad signature, a wrong secret, and none: 401 with nothing given away. (GitLab sends its secret as a
            // token rather than signing the body, so an altered body is not something it can detect.)
            let second = try fixture.push("second")
            let next = ForgeExamples.payload(forge, ref: "refs/heads/main", before: first, after: second, cloneURL: url)
            let attempts = forge == "gitlab" ? [("wrong-secret", false)] : [("daemon-secret", true), ("wrong-secret", false)]
            for (secret, tamper) in attempts {
                let bad = try await deliver(client, forge, payload: next, secret: secret, tamper: tamper)
                #expect(bad.status == .unauthorized)
                #expect(bad.json[path: "error.message"] as? String == "the delivery could not be authenticated")
            }
            let unsigned = try await deliver(client, forge, payload: next, secret: nil)
            #expect(unsigned.status == .unauthorized)

            // A push to a branch nobody follows.
            let other = ForgeExamples.payload(forge, ref: "refs/heads/feature", before: zeros, after: second, cloneURL: url)
            let elsewhere = try await deliver(client, forge, payload: other, secret: "daemon-secret")
            #expect(elsewhere.status == .accepted)
            #expect(elsewhere.json["matched"] as? [String] == [])

            // An event that is not a push; for GitHub, a ping.
            let event = forge == "github" ? "ping" : (forge == "gitlab" ? "Tag Push Hook" : (forge == "gitea" ? "issues" : "repo:fork"))
            let notPush = try await deliver(client, forge, payload: ["zen": "Keep it simple.", "repository": push["repository"] ?? [:], "project": push["project"] ?? [:]], secret: "daemon-secret", event: event)
            if forge == "github" {
                #expect(notPush.status == .ok)
                #expect(notPush.json["status"] as? String == "ok")
            } else {
                #expect(notPush.status == .accepted)
                #expect(notPush.json["matched"] as? [String] == [])
            }
        }
        // Only the one good delivery deployed.
        #expect(try await fixture.daemon.context.store.deployments(app: "hello").count == 1)
    }

    @Test func anAppsOwnSecretIsTheOnlyOneThatReachesIt() async throws {
        let fixture = try await ServerFixture(
            apps: ["hello": "webhook_secret: ${HELLO_HOOK}\n"],
            configuration: ServerConfiguration(webhookSecret: "daemon-secret"), environment: ["HELLO_HOOK": "app-secret"])
        let sha = try fixture.push("first")
        let origin = fixture.origin
        try await fixture.test { client in
            let payload = ForgeExamples.github(ref: "refs/heads/main", before: String(repeating: "0", count: 40), after: sha, cloneURL: "file://" + origin)
            let withDaemonSecret = try await deliver(client, "github", payload: payload, secret: "daemon-secret")
            #expect(withDaemonSecret.status == .accepted)
            #expect(withDaemonSecret.json["matched"] as? [String] == [], "the daemon's secret does not reach an app with its own")
            let withAppSecret = try await deliver(client, "github", payload: payload, secret: "app-secret")
            #expect(withAppSecret.json["matched"] as? [String] == ["hello"])
        }
    }

    @Test func withNoSecretConfiguredEveryDeliveryIsRefused() async throws {
        let fixture = try await ServerFixture()
        let sha = try fixture.push("first")
        let origin = fixture.origin
        try await fixture.test { client in
            let payload = ForgeExamples.github(ref: "refs/heads/main", before: String(repeating: "0", count: 40), after: sha, cloneURL: "file://" + origin)
            let response = try await deliver(client, "github", payload: payload, secret: "anything")
            #expect(response.status == .unauthorized)
        }
    }

    @Test func malformedDeliveriesAreTurnedAwayWithoutCrashing() async throws {
        let fixture = try await ServerFixture(configuration: ServerConfiguration(webhookSecret: "s"))
        try await fixture.test { client in
            for body in ["", "{", "[]", "null", "{\"ref\": 5}", String(repeating: "[", count: 10_000), "\u{FF}\u{FE}"] {
                let bytes = Array(body.utf8)
                let headers = ForgeExamples.headers("github", body: bytes, secret: "s", delivery: UUID().uuidString)
                try await client.execute(uri: "/hooks/github", method: .post, headers: headers, body: ByteBuffer(bytes: bytes)) { response in
                    #expect(response.status == .badRequest, "\(body.prefix(20))")
                }
            }
        }
    }
}
