import Deploy
import Foundation
import Hummingbird

/// `/hooks/...`: the git hook's notice, and the forges' push webhooks.
struct HooksController<Context: RequestContext> {
    let daemon: Daemon
    let maxBody: Int
    /// The secret for apps that have no `webhook_secret` of their own.
    let webhookSecret: String?

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
        let body = try await request.decodeJSON(PushHookRequest.self, limit: maxBody, empty: PushHookRequest(app: "", ref: "", after: ""))
        guard !body.app.isEmpty, !body.ref.isEmpty, !body.after.isEmpty else {
            throw APIError.badRequest("the body needs 'app', 'ref' and 'after'")
        }
        let deployments = try await daemon.watcher.pushed(app: body.app, ref: body.ref, before: body.before, after: body.after)
        return try .json(DeploymentsResponse(deployments: deployments.map { DeploymentJSON($0) }), status: .accepted)
    }

    func forge(_ forge: Forge, _ request: Request, _ context: Context) async throws -> Response {
        let metrics = daemon.context.metrics
        let buffer = try await request.body(limit: maxBody)
        let body = Array(buffer.readableBytesView)

        // 1. Who may have signed it: the apps following the repository it names, each with its own secret or
        //    the daemon's. Nothing in the payload is trusted until one of those secrets verifies it.
        let event = request.headers[forge.eventHeader] ?? ""
        let payload = ForgePayload.decode(body)
        let candidates = daemon.registry.pipelines(following: payload?.repositoryURLs(forge) ?? [])
        //    An app with its own secret is reached only by deliveries signed with it. The daemon's secret is
        //    checked once, however many apps rely on it.
        let daemonSecretVerifies = webhookSecret.map { forge.verify(body: body, headers: request.headers, secret: $0) } ?? false
        let authorized = candidates.filter { pipeline in
            pipeline.webhookSecret.map { forge.verify(body: body, headers: request.headers, secret: $0) } ?? daemonSecretVerifies
        }
        guard !authorized.isEmpty || daemonSecretVerifies else {
            metrics.webhookDelivery(provider: forge.rawValue, result: "unauthorized")
            throw APIError.unauthorized("the delivery could not be authenticated")
        }

        // 2. A delivery seen before does nothing.
        if let id = forge.deliveryHeaders.lazy.compactMap({ request.headers[$0] }).first, !id.isEmpty {
            guard daemon.context.store.recordDelivery(id: "\(forge.rawValue):\(id)", provider: forge.rawValue) else {
                metrics.webhookDelivery(provider: forge.rawValue, result: "duplicate")
                return try .json(WebhookResponse(matched: [], deployments: []), status: .accepted)
            }
        }

        // 3. Only pushes deploy; GitHub's ping gets a plain 200.
        if forge == .github && event == "ping" {
            metrics.webhookDelivery(provider: forge.rawValue, result: "ping")
            return try .json(["status": "ok"])
        }
        guard forge.pushEvents.contains(event) else {
            metrics.webhookDelivery(provider: forge.rawValue, result: "ignored")
            return try .json(WebhookResponse(matched: [], deployments: []), status: .accepted)
        }
        let push: ForgePush
        do {
            push = try ForgePayload.push(forge, payload)
        } catch {
            metrics.webhookDelivery(provider: forge.rawValue, result: "invalid")
            throw APIError.badRequest("\(error)")
        }
        var matched: [String] = []
        var deployments: [Deployment] = []
        for change in push.changes {
            let result = await daemon.watcher.forgePush(authorized, ref: change.ref, after: change.after)
            matched += result.matched
            deployments += result.deployments
        }
        metrics.webhookDelivery(provider: forge.rawValue, result: "accepted")
        let names = Array(Set(matched)).sorted()
        if deployments.isEmpty {
            // The common answer in a flood of deliveries, written directly: app names are [a-z0-9_-] only.
            let list = names.map { "\"\($0)\"" }.joined(separator: ",")
            return .json(bytes: ByteBuffer(string: "{\"matched\":[\(list)],\"deployments\":[]}"), status: .accepted)
        }
        return try .json(
            WebhookResponse(matched: names, deployments: deployments.map { DeploymentJSON($0) }), status: .accepted)
    }
}
