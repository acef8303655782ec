import Deploy
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SlipwayAPI

/// `/api/v1/deployments/{id}...` and `/api/v1/events`: one deployment, its log (whole or followed live), cancel,
/// and the stream of every deployment's changes.
struct DeploymentsController<E: Engine, Context: RequestContext> {
    let engine: E
    /// How often an idle event stream sends a comment to keep proxies from closing it.
    let keepAliveInterval: Duration

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("/deployments/:id", use: show)
        routes.get("/deployments/:id/log", use: log)
        routes.post("/deployments/:id/cancel", use: cancel)
        routes.get("/events", use: events)
        return routes
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Response {
        try .json(try await engine.deployment(try context.idParameter()))
    }

    @Sendable func cancel(_ request: Request, context: Context) async throws -> Response {
        try .json(try await engine.cancel(try context.idParameter()), status: .accepted)
    }

    /// The log as text, streamed from disk; or with `Accept: text/event-stream`, followed live: every line after
    /// `Last-Event-ID` (each line's id is its line number), then each new line, then `event: end` with the final
    /// deployment.
    @Sendable func log(_ request: Request, context: Context) async throws -> Response {
        let id = try context.idParameter()
        guard request.headers[.accept]?.contains("text/event-stream") ?? false else {
            let chunks = try await engine.log(deployment: id)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init { writer in
                    defer { MemoryTrim.soon() }
                    for await chunk in chunks { try await writer.write(ByteBuffer(bytes: chunk)) }
                    try await writer.finish(nil)
                })
        }
        let after = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int($0) } ?? 0
        let follow = try await engine.followLog(deployment: id, after: after)
        let interval = keepAliveInterval
        return Response(
            status: .ok, headers: SSE.headers,
            body: .init { writer in
                try await SSE.forEach(follow, keepAliveEvery: interval) { item in
                    switch item {
                    case .keepAlive:
                        try await writer.write(SSE.keepAlive)
                    case .element(.line(let number, let text)):
                        try await writer.write(SSE.event(id: number, data: text))
                    case .element(.end(let detail)):
                        let end = String(decoding: try APICoding.encode(detail), as: UTF8.self)
                        try await writer.write(SSE.event("end", data: end))
                    }
                }
                try await writer.finish(nil)
            })
    }

    /// Every change of any deployment's status or phase, as `event: deployment`, and of any instance of an app's
    /// process, as `event: process`.
    @Sendable func events(_ request: Request, context: Context) async throws -> Response {
        let events = Self.merged(engine.events(), engine.processEvents())
        let interval = keepAliveInterval
        return Response(
            status: .ok, headers: SSE.headers,
            body: .init { writer in
                try await writer.write(SSE.keepAlive)
                try await SSE.forEach(events, keepAliveEvery: interval) { item in
                    switch item {
                    case .keepAlive:
                        try await writer.write(SSE.keepAlive)
                    case .element(.deployment(let deployment)):
                        let data = String(decoding: try APICoding.encode(deployment), as: UTF8.self)
                        try await writer.write(SSE.event("deployment", data: data))
                    case .element(.process(let change)):
                        let data = String(decoding: try APICoding.encode(change), as: UTF8.self)
                        try await writer.write(SSE.event("process", data: data))
                    }
                }
                try await writer.finish(nil)
            })
    }

    enum Change: Sendable {
        case deployment(API.Deployment)
        case process(API.ProcessEvent)
    }

    /// Both streams in one, in the order their changes come; it ends when the deployments' stream does (the
    /// listener fell behind, or the daemon shuts down).
    static func merged(
        _ deployments: DeploymentEvents, _ processes: AsyncStream<API.ProcessEvent>
    )
        -> AsyncStream<Change>
    {
        let (stream, continuation) = AsyncStream<Change>.makeStream()
        let pump = Task {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await change in processes { continuation.yield(.process(change)) }
                }
                for await deployment in deployments { continuation.yield(.deployment(deployment)) }
                continuation.finish()
                group.cancelAll()
            }
        }
        continuation.onTermination = { _ in pump.cancel() }
        return stream
    }
}
