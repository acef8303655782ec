import Deploy
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import SlipwayAPI

/// Builds the HTTP application around a prepared engine: the routes, the middleware and the engine's services
/// (a daemon's queue, reloader and poller), which the application's service group starts and, on SIGTERM or SIGINT,
/// stops in reverse order.
public func buildApplication(
    engine: some Engine, services: [any Service], configuration: ServerConfiguration,
    registry: PrometheusCollectorRegistry, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    try configuration.validate()
    let router = buildRouter(engine: engine, configuration: configuration, registry: registry)
    let idle = configuration.idleTimeout.components
    return Application(
        router: router,
        server: .http1(
            configuration: .init(
                additionalChannelHandlers: [HTTP10CloseInstaller()],
                idleTimeout: .nanoseconds(idle.seconds * 1_000_000_000 + idle.attoseconds / 1_000_000_000))),
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "slipway",
            availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections)),
        services: services,
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
}

/// Every route of the contract.
public func buildRouter(
    engine: some Engine, configuration: ServerConfiguration, registry: PrometheusCollectorRegistry,
    keepAliveInterval: Duration = .seconds(15)
) -> Router<BasicRequestContext> {
    // HEAD wherever GET is served (RFC 9110 asks for it; uptime monitors and `curl -I` use it).
    let router = Router(context: BasicRequestContext.self, options: .autoGenerateHeadEndpoints)
    let routeTable = RouteTable()
    router.add(middleware: ErrorMiddleware(maxBody: configuration.maxBody, routes: routeTable))
    router.add(
        middleware: BrowserGuardMiddleware(listeningOn: configuration.host, allowedHosts: configuration.allowedHosts))
    router.add(middleware: AuthMiddleware(token: configuration.token, isPrivate: configuration.isPrivate))

    router.get("/healthz") { _, _ in try Response.json(API.Status(status: "ok")) }
    router.get("/metrics") { _, _ in
        Response.text(registry.emitToString(), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }
    let dashboardOverride = ProcessInfo.processInfo.environment["SLIPWAY_DASHBOARD_FILE"]
    router.get("/") { _, _ in
        // SLIPWAY_DASHBOARD_FILE serves the page from disk, read on every request: for working on the page
        // without rebuilding the binary. Without it the page is the one compiled in.
        let page = dashboardOverride.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? Resources.dashboard
        var response = Response.text(page, contentType: "text/html; charset=utf-8")
        // The page builds its DOM from API data with textContent only; this policy makes any slip harmless.
        response.headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return response
    }
    router.get("/api/v1/openapi.yaml") { _, _ in
        Response.text(Resources.openAPI, contentType: "application/yaml; charset=utf-8")
    }
    router.addRoutes(AppsController(engine: engine, maxBody: configuration.maxBody).routes, atPath: "/api/v1")
    router.addRoutes(
        DeploymentsController(engine: engine, keepAliveInterval: keepAliveInterval).routes, atPath: "/api/v1")
    router.addRoutes(
        ProcessesController(engine: engine, maxBody: configuration.maxBody, keepAliveInterval: keepAliveInterval)
            .routes, atPath: "/api/v1")
    router.addRoutes(HooksController(engine: engine, maxBody: configuration.maxBody).routes, atPath: "/hooks")
    routeTable.set(router.routes.map { (method: $0.method.rawValue, path: $0.path.description) })
    return router
}

/// Files served from the binary itself, so that the executable needs nothing beside it.
enum Resources {
    static let dashboard = String(decoding: PackageResources.dashboard_html, as: UTF8.self)
    static let openAPI = String(decoding: PackageResources.openapi_yaml, as: UTF8.self)
}
