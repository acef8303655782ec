import Deploy
import Foundation
import Hummingbird

/// `/api/v1/apps...`: the apps, their deployments and releases, and deploy and rollback.
struct AppsController<Context: RequestContext> {
    let daemon: Daemon
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
        return routes
    }

    /// Dashboards and scripts poll this far more often than anything changes, so the encoded answer is kept until
    /// the daemon's summary generation moves on.
    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let generation = daemon.summaryGeneration
        if let cached = listCache.bytes(for: generation) { return .json(bytes: cached) }
        let data = try JSONCoding.data(AppsResponse(apps: try await daemon.appSummaries().map(AppJSON.init)))
        let buffer = ByteBuffer(bytes: data)
        listCache.store(buffer, for: generation)
        return .json(bytes: buffer)
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Response {
        try .json(AppJSON(app: try await daemon.appSummary(try context.pathParameter("app"))))
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
            guard let value = Int64(text), value > 0 else { throw APIError.badRequest("'before' must be a deployment id") }
            before = value
        }
        let list = try await daemon.deployments(app: try context.pathParameter("app"), limit: limit, before: before)
        return try .json(DeploymentsResponse(deployments: list.map { DeploymentJSON($0) }))
    }

    @Sendable func releases(_ request: Request, context: Context) async throws -> Response {
        let (releases, live) = try await daemon.releases(app: try context.pathParameter("app"))
        return try .json(ReleasesResponse(releases: releases.map { ReleaseJSON(release: $0, active: $0.id == live) }))
    }

    @Sendable func deploy(_ request: Request, context: Context) async throws -> Response {
        let app = try context.pathParameter("app")
        let body = try await request.decodeJSON(DeployRequest.self, limit: maxBody, empty: DeployRequest())
        let deployment = try await daemon.watcher.deploy(app: app, ref: body.ref)
        return try .json(DeploymentJSON(deployment), status: .accepted)
    }

    @Sendable func rollback(_ request: Request, context: Context) async throws -> Response {
        let app = try context.pathParameter("app")
        let body = try await request.decodeJSON(RollbackRequest.self, limit: maxBody, empty: RollbackRequest())
        let target: RollbackTarget?
        switch body.to {
        case .release(let id)?: target = .release(id)
        case .commit(let sha)?: target = .commit(sha)
        case nil: target = nil
        }
        let deployment = try await daemon.watcher.rollback(app: app, to: target)
        return try .json(DeploymentJSON(deployment), status: .accepted)
    }
}
