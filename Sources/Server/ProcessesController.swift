import Deploy
import Foundation
import HTTPTypes
import Hummingbird
import SlipwayAPI

/// `/api/v1/apps/{app}/processes...` and `/api/v1/apps/{app}/restart`: the processes Slipway runs for an app, their
/// output, and a restart.
struct ProcessesController<E: Engine, Context: RequestContext> {
    let engine: E
    let maxBody: Int
    let keepAliveInterval: Duration

    /// How many of the last lines a followed log starts with.
    static var followedLines: Int { 200 }

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("/apps/:app/processes", use: list)
        routes.get("/apps/:app/processes/:name/log", use: log)
        routes.post("/apps/:app/restart", use: restart)
        return routes
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        try .json(API.ProcessList(processes: try await engine.processes(app: try context.pathParameter("app"))))
    }

    /// The output as text; or with `Accept: text/event-stream`, its last lines and then each new line, one event
    /// each, until the client goes.
    @Sendable func log(_ request: Request, context: Context) async throws -> Response {
        let app = try context.pathParameter("app")
        let name = try context.pathParameter("name")
        guard request.headers[.accept]?.contains("text/event-stream") ?? false else {
            let chunks = try await engine.processLog(app: app, process: name)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init { writer in
                    for await chunk in chunks { try await writer.write(ByteBuffer(bytes: chunk)) }
                    try await writer.finish(nil)
                })
        }
        let lines = try await engine.followProcessLog(app: app, process: name, lines: Self.followedLines)
        let interval = keepAliveInterval
        return Response(
            status: .ok, headers: SSE.headers,
            body: .init { writer in
                try await writer.write(SSE.keepAlive)
                try await SSE.forEach(lines, keepAliveEvery: interval) { item in
                    switch item {
                    case .keepAlive: try await writer.write(SSE.keepAlive)
                    case .element(let line): try await writer.write(SSE.event(data: line))
                    }
                }
                try await writer.finish(nil)
            })
    }

    @Sendable func restart(_ request: Request, context: Context) async throws -> Response {
        let app = try context.pathParameter("app")
        let body = try await request.decodeJSON(API.RestartRequest.self, limit: maxBody, empty: API.RestartRequest())
        return try .json(API.ProcessList(processes: try await engine.restart(app: app, process: body.process)))
    }
}
