import Deploy
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// Server-Sent Events: the framing, and a writer that says something now and then when there is nothing to say.
enum SSE {
    static let headers: HTTPFields = [
        .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache",
        HTTPField.Name("X-Accel-Buffering")!: "no",
    ]

    /// One event; multi-line data becomes several `data:` lines, as the format requires.
    static func event(_ name: String? = nil, id: Int? = nil, data: String) -> ByteBuffer {
        var text = ""
        if let name { text += "event: \(name)\n" }
        if let id { text += "id: \(id)\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
            text += "data: \(line)\n"
        }
        return ByteBuffer(string: text + "\n")
    }

    /// A comment line, which keeps an idle connection from being cut by proxies.
    static let keepAlive = ByteBuffer(string: ": keep-alive\n\n")

    /// What to write next: an element of the stream, or a keep-alive because `interval` passed without one.
    enum Item<Element: Sendable>: Sendable {
        case element(Element)
        case keepAlive
    }

    /// How many elements may wait between the stream and a slow client before the response is ended; the
    /// client can then ask again from where it was.
    static let backlog = 256

    /// Calls `body` with every element of `elements` and with a keep-alive after each `interval` of quiet, until
    /// `elements` ends, the client falls `backlog` elements behind, the daemon shuts down, or `body` throws. Both
    /// sources run as child tasks of this call.
    static func forEach<S: AsyncSequence & Sendable>(
        _ elements: S, keepAliveEvery interval: Duration, _ body: (Item<S.Element>) async throws -> Void
    ) async throws where S.Element: Sendable {
        defer { MemoryTrim.soon() }
        let (items, continuation) = AsyncStream<Item<S.Element>>.makeStream(bufferingPolicy: .bufferingOldest(backlog))
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                defer { continuation.finish() }
                for try await element in elements.cancelOnGracefulShutdown() {
                    if case .dropped = continuation.yield(.element(element)) { return }
                }
            }
            group.addTask {
                while (try? await Task.sleep(for: interval)) != nil {
                    continuation.yield(.keepAlive)
                }
            }
            for await item in items { try await body(item) }
            group.cancelAll()
        }
    }
}
