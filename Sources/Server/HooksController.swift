import Deploy
import Foundation
import Hummingbird
import NIOCore
import SlipwayAPI

/// `/hooks/...`: the git hook's notice, and the forges' push webhooks. Which apps a delivery reaches, which secret
/// applies and what counts as a repeat are Deploy's decisions; this only reads the request and writes the answer.
struct HooksController<E: Engine, Context: RequestContext> {
    let engine: E
    let maxBody: Int

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("/push", use: push)
        for forge in Forge.allCases {
            routes.post("/\(forge.rawValue)") { request, context in try await self.forge(forge, request, context) }
        }
        return routes
    }

    /// Sent by the git hook (through `slipway notify`), with the bearer token when one is set.
    @Sendable func push(_ request: Request, context: Context) async throws -> Response {
        let empty = API.PushNotice(app: "", ref: "", before: nil, after: "")
        let body = try await request.decodeJSON(API.PushNotice.self, limit: maxBody, empty: empty)
        guard !body.app.isEmpty, !body.ref.isEmpty, !body.after.isEmpty else {
            throw APIError.badRequest("the body needs 'app', 'ref' and 'after'")
        }
        let deployments = try await engine.push(
            PushNotice(
                app: body.app, ref: body.ref, before: body.before, after: body.after,
                quarantine: body.gate?.objectDirectories))
        return try .json(API.DeploymentList(deployments: deployments), status: .accepted)
    }

    func forge(_ forge: Forge, _ request: Request, _ context: Context) async throws -> Response {
        let buffer = try await request.body(limit: maxBody)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let outcome = try await engine.deliver(
            ForgeDelivery(forge: forge, headers: headers, body: Array(buffer.readableBytesView)))
        switch outcome {
        case .ping:
            return try .json(API.Status(status: "ok"))
        case .ignored:
            return Self.matchedOnly([])
        case .accepted(let matched, let deployments) where deployments.isEmpty:
            return Self.matchedOnly(matched)
        case .accepted(let matched, let deployments):
            let result = API.WebhookResult(matched: matched, deployments: deployments)
            return try .json(result, status: .accepted)
        }
    }

    /// The common answer in a flood of deliveries, written directly: app names are `[a-z0-9_-]` only.
    private static func matchedOnly(_ names: [String]) -> Response {
        let list = names.map { "\"\($0)\"" }.joined(separator: ",")
        return .json(bytes: ByteBuffer(string: "{\"matched\":[\(list)],\"deployments\":[]}"), status: .accepted)
    }
}
