import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Server
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

/// Payloads shaped like each forge's documented push example, trimmed to a realistic core. The repository's
/// clone URL is the test's origin (a `file://` URL), because the daemon fetches from it.

@Suite struct WebhookTests {
    static let forges = ["github", "gitlab", "gitea", "bitbucket"]

    func deliver(
        _ client: any TestClientProtocol, _ forge: String, payload: [String: Any], secret: String?,
        delivery: String = UUID().uuidString,
        event: String? = nil, tamper: Bool = false
    ) async throws -> TestResponse {
        var body = Array(try JSONSerialization.data(withJSONObject: payload))
        let headers = ForgeExamples.headers(forge, event: event, body: body, secret: secret, delivery: delivery)
        if tamper { body.append(contentsOf: Array(" ".utf8)) }
        return try await client.execute(
            uri: "/hooks/\(forge)", method: .post, headers: headers, body: ByteBuffer(bytes: body))
    }

    @Test(arguments: forges)
    func aSignedPushDeploysAndEverythingElseDoesNot(forge: String) async throws {
        let fixture = try await ServerFixture(webhookSecret: "daemon-secret")
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
            let attempts =
                forge == "gitlab" ? [("wrong-secret", false)] : [("daemon-secret", true), ("wrong-secret", false)]
            for (secret, tamper) in attempts {
                let bad = try await deliver(client, forge, payload: next, secret: secret, tamper: tamper)
                #expect(bad.status == .unauthorized)
                #expect(bad.json[path: "error.message"] as? String == "the delivery could not be authenticated")
            }
            let unsigned = try await deliver(client, forge, payload: next, secret: nil)
            #expect(unsigned.status == .unauthorized)

            // A push to a branch nobody follows.
            let other = ForgeExamples.payload(
                forge, ref: "refs/heads/feature", before: zeros, after: second, cloneURL: url)
            let elsewhere = try await deliver(client, forge, payload: other, secret: "daemon-secret")
            #expect(elsewhere.status == .accepted)
            #expect(elsewhere.json["matched"] as? [String] == [])

            // An event that is not a push; for GitHub, a ping.
            let event =
                forge == "github"
                ? "ping" : (forge == "gitlab" ? "Tag Push Hook" : (forge == "gitea" ? "issues" : "repo:fork"))
            let notPush = try await deliver(
                client, forge,
                payload: [
                    "zen": "Keep it simple.", "repository": push["repository"] ?? [:],
                    "project": push["project"] ?? [:],
                ], secret: "daemon-secret", event: event)
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
            webhookSecret: "daemon-secret", environment: ["HELLO_HOOK": "app-secret"])
        let sha = try fixture.push("first")
        let origin = fixture.origin
        try await fixture.test { client in
            let payload = ForgeExamples.github(
                ref: "refs/heads/main", before: String(repeating: "0", count: 40), after: sha,
                cloneURL: "file://" + origin)
            // The daemon's secret does not reach an app with its own, and the forge is told the delivery failed.
            let withDaemonSecret = try await deliver(client, "github", payload: payload, secret: "daemon-secret")
            #expect(withDaemonSecret.status == .unauthorized)
            let withAppSecret = try await deliver(client, "github", payload: payload, secret: "app-secret")
            #expect(withAppSecret.json["matched"] as? [String] == ["hello"])
        }
    }

    @Test func withNoSecretConfiguredEveryDeliveryIsRefused() async throws {
        let fixture = try await ServerFixture()
        let sha = try fixture.push("first")
        let origin = fixture.origin
        try await fixture.test { client in
            let payload = ForgeExamples.github(
                ref: "refs/heads/main", before: String(repeating: "0", count: 40), after: sha,
                cloneURL: "file://" + origin)
            let response = try await deliver(client, "github", payload: payload, secret: "anything")
            #expect(response.status == .unauthorized)
        }
    }

    @Test func malformedDeliveriesAreTurnedAwayWithoutCrashing() async throws {
        let fixture = try await ServerFixture(webhookSecret: "s")
        try await fixture.test { client in
            for body in ["", "{", "[]", "null", "{\"ref\": 5}", String(repeating: "[", count: 10_000), "\u{FF}\u{FE}"] {
                let bytes = Array(body.utf8)
                let headers = ForgeExamples.headers("github", body: bytes, secret: "s", delivery: UUID().uuidString)
                try await client.execute(
                    uri: "/hooks/github", method: .post, headers: headers, body: ByteBuffer(bytes: bytes)
                ) { response in
                    #expect(response.status == .badRequest, "\(body.prefix(20))")
                }
            }
        }
    }

    /// GitHub's default content type for a new webhook is `application/x-www-form-urlencoded`, with the JSON in a
    /// `payload` field; the signature is over the raw body as sent.
    @Test func aFormEncodedGitHubDeliveryDeploys() async throws {
        let fixture = try await ServerFixture(webhookSecret: "daemon-secret")
        let sha = try fixture.push("form")
        let origin = fixture.origin
        let json = try JSONSerialization.data(
            withJSONObject: ForgeExamples.github(
                ref: "refs/heads/main", before: String(repeating: "0", count: 40), after: sha, cloneURL: origin))
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let field = String(decoding: json, as: UTF8.self).addingPercentEncoding(withAllowedCharacters: allowed)!
        let body = Array(("payload=" + field).utf8)
        var formHeaders = ForgeExamples.headers(
            "github", body: body, secret: "daemon-secret", delivery: UUID().uuidString)
        formHeaders[.contentType] = "application/x-www-form-urlencoded"
        let headers = formHeaders
        try await fixture.test { client in
            try await client.execute(
                uri: "/hooks/github", method: .post, headers: headers, body: ByteBuffer(bytes: body)
            ) {
                response in
                #expect(response.status == .accepted, "\(response.text)")
                #expect(response.json["matched"] as? [String] == ["hello"])
                #expect((response.json["deployments"] as? [Any])?.count == 1)
            }
        }
    }
}
