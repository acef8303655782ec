import Deploy
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// `/api/v1/deployments/{id}...` and `/api/v1/events`: one deployment, its log (whole or followed live), cancel,
/// and the stream of every deployment's changes.
struct DeploymentsController<Context: RequestContext> {
    let daemon: Daemon
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
        let (deployment, steps) = try await daemon.deployment(try context.idParameter())
        return try .json(DeploymentJSON(deployment, steps: steps))
    }

    @Sendable func cancel(_ request: Request, context: Context) async throws -> Response {
        let deployment = try await daemon.queue.cancel(try context.idParameter())
        return try .json(DeploymentJSON(deployment), status: .accepted)
    }

    /// The log as text, or with `Accept: text/event-stream` followed live: every line so far, then each new line
    /// as it is written, then `event: end` with the final deployment.
    @Sendable func log(_ request: Request, context: Context) async throws -> Response {
        let id = try context.idParameter()
        _ = try await daemon.deployment(id)  // 404 for an unknown id
        let path = daemon.logPath(deployment: id)
        let wantsStream = request.headers[.accept]?.contains("text/event-stream") ?? false
        guard wantsStream else { return .text(Self.readLog(path)) }
        // Subscribe before reading the file, and skip lines the file already had: nothing is lost in between.
        let stream = KeepAliveStream(daemon.context.events.subscribe(deployment: id), interval: keepAliveInterval)
        let daemon = self.daemon
        return Response(status: .ok, headers: SSE.headers, body: .init { writer in
            // Only whole lines: what follows the last newline is a line still being written, and comes as an event.
            var lines = Self.readLog(path).split(separator: "\n", omittingEmptySubsequences: false)
            lines.removeLast()
            // Each line's id is its number, so a client that reconnects with Last-Event-ID gets only what it missed.
            let resumeAfter = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int($0) } ?? 0
            for (index, line) in lines.enumerated() where index + 1 > resumeAfter {
                try await writer.write(SSE.event(id: index + 1, data: String(line)))
            }
            var seen = max(lines.count, resumeAfter)
            var (deployment, steps) = try await daemon.deployment(id)
            if !deployment.status.isFinished {
                for await item in stream.cancelOnGracefulShutdown() {
                    guard let event = item else {
                        try await writer.write(SSE.keepAlive)
                        continue
                    }
                    switch event {
                    case .log(_, let number, let line) where number > seen:
                        seen = number
                        try await writer.write(SSE.event(id: number, data: line))
                    case .deployment(let changed) where changed.id == id && changed.status.isFinished:
                        (deployment, steps) = try await daemon.deployment(id)
                    default:
                        continue
                    }
                    if deployment.status.isFinished { break }
                }
            }
            let end = String(decoding: try JSONCoding.data(DeploymentJSON(deployment, steps: steps)), as: UTF8.self)
            try await writer.write(SSE.event("end", data: end))
            try await writer.finish(nil)
        })
    }

    /// The log file's text. Bytes that are not UTF-8 (a step may print anything) read as U+FFFD rather than
    /// making the whole log unreadable.
    private static func readLog(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    /// Every change of any deployment's status or phase, as `event: deployment`.
    @Sendable func events(_ request: Request, context: Context) async throws -> Response {
        let stream = KeepAliveStream(daemon.context.events.subscribe(), interval: keepAliveInterval)
        return Response(status: .ok, headers: SSE.headers, body: .init { writer in
            try await writer.write(SSE.keepAlive)
            for await item in stream.cancelOnGracefulShutdown() {
                guard let event = item else {
                    try await writer.write(SSE.keepAlive)
                    continue
                }
                if case .deployment(let deployment) = event {
                    let data = String(decoding: try JSONCoding.data(DeploymentJSON(daemon.masked(deployment))), as: UTF8.self)
                    try await writer.write(SSE.event("deployment", data: data))
                }
            }
            try await writer.finish(nil)
        })
    }
}

/// Events with a `nil` every `interval`, so that a stream with nothing to say still says something now and then.
struct KeepAliveStream: AsyncSequence, Sendable {
    typealias Element = EventBus.Event?
    let events: AsyncStream<EventBus.Event>
    let interval: Duration

    init(_ events: AsyncStream<EventBus.Event>, interval: Duration) {
        self.events = events
        self.interval = interval
    }

    func makeAsyncIterator() -> AsyncStream<EventBus.Event?>.Iterator {
        let (merged, continuation) = AsyncStream<EventBus.Event?>.makeStream(bufferingPolicy: .bufferingNewest(50_000))
        let events = self.events
        let interval = self.interval
        let forward = Task {
            for await event in events { continuation.yield(event) }
            continuation.finish()
        }
        let tick = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { break }
                continuation.yield(nil)
            }
        }
        continuation.onTermination = { _ in
            forward.cancel()
            tick.cancel()
        }
        return merged.makeAsyncIterator()
    }
}
