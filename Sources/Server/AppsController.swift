import Deploy
import Foundation
import Hummingbird
import SlipwayAPI

/// `/api/v1/apps...` and `/api/v1/nodes`: the apps, their deployments and releases, deploy and rollback, and the
/// daemons that share the state.
struct AppsController<E: Engine, Context: RequestContext> {
    let engine: E
    let maxBody: Int
    let listCache = EncodedCache()

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("/apps", use: list)
        routes.get("/apps/:app", use: show)
        routes.get("/apps/:app/deployments", use: deployments)
        routes.get("/apps/:app/releases", use: releases)
        routes.post("/apps/:app/deploy", use: deploy)
        routes.post("/apps/:app/rollback", use: rollback)
        routes.get("/nodes", use: nodes)
        return routes
    }

    /// Dashboards and scripts poll this far more often than anything changes, so the encoded answer is kept until
    /// the engine's generation moves on.
    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let generation = engine.appsGeneration
        if let cached = listCache.bytes(for: generation) { return .json(bytes: cached) }
        let apps = try await engine.apps()
        let buffer = ByteBuffer(bytes: try APICoding.encode(API.AppList(apps: apps)))
        listCache.store(buffer, for: generation)
        return .json(bytes: buffer)
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Response {
        try .json(try await engine.app(try context.pathParameter("app")))
    }

    @Sendable func deployments(_ request: Request, context: Context) async throws -> Response {
        let query = request.uri.queryParameters
        var limit = 50
        if let text = query.get("limit") {
            guard let value = Int(text), (1...500).contains(value) else {
                throw APIError.badRequest("'limit' must be a whole number from 1 to 500")
            }
            limit = value
        }
        var before: Int64?
        if let text = query.get("before") {
            guard let value = Int64(text), value > 0 else {
                throw APIError.badRequest("'before' must be a deployment id")
            }
            before = value
        }
        let list = try await engine.deployments(app: try context.pathParameter("app"), limit: limit, before: before)
        return try .json(API.DeploymentList(deployments: list))
    }

    @Sendable func releases(_ request: Request, context: Context) async throws -> Response {
        let releases = try await engine.releases(app: try context.pathParameter("app"))
        return try .json(API.ReleaseList(releases: releases))
    }

    @Sendable func deploy(_ request: Request, context: Context) async throws -> Response {
        let app = try context.pathParameter("app")
        let body = try await request.decodeJSON(API.DeployRequest.self, limit: maxBody, empty: API.DeployRequest())
        let deployment = try await engine.deploy(app: app, ref: body.ref)
        return try .json(deployment, status: .accepted)
    }

    @Sendable func rollback(_ request: Request, context: Context) async throws -> Response {
        let app = try context.pathParameter("app")
        let body = try await request.decodeJSON(API.RollbackRequest.self, limit: maxBody, empty: API.RollbackRequest())
        let target: RollbackTarget?
        switch body.to {
        case .release(let id)?: target = .release(id)
        case .commit(let sha)?: target = .commit(sha)
        case nil: target = nil
        }
        let deployment = try await engine.rollback(app: app, to: target)
        return try .json(deployment, status: .accepted)
    }

    @Sendable func nodes(_ request: Request, context: Context) async throws -> Response {
        try .json(API.NodeList(nodes: try await engine.nodes()))
    }
}
