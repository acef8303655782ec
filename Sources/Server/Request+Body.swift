import Foundation
import Hummingbird
import NIOCore
import SlipwayAPI

extension Request {
    /// The body, at most `limit` bytes: a larger one is refused with 413, and the connection is closed after it.
    ///
    /// Many clients (Python's urllib, many forges') send the whole body before they read anything, with no
    /// `Expect: 100-continue`. Closing on them unread would reset the connection before they read the 413, and
    /// leaving the rest unread would leave them hanging in their send; so what they send is read and dropped, up to
    /// `drainLimit`, before the answer.
    func body(limit: Int) async throws -> ByteBuffer {
        if let length = headers[.contentLength].flatMap(Int.init), length > limit {
            // A client that declared more than it sends would hold the drain until the idle timeout: the answer
            // goes after two seconds of draining at most.
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await self.drain(upTo: Self.drainLimit) }
                group.addTask { try? await Task.sleep(for: .seconds(2)) }
                await group.next()
                group.cancelAll()
            }
            throw APIError.tooLarge(limit)
        }
        var collected = ByteBuffer()
        var iterator = body.makeAsyncIterator()
        while let chunk = try await iterator.next() {
            guard collected.readableBytes + chunk.readableBytes <= limit else {
                try await drain(upTo: Self.drainLimit, from: &iterator)
                throw APIError.tooLarge(limit)
            }
            collected.writeImmutableBuffer(chunk)
        }
        return collected
    }

    /// How much of an oversized body is read and dropped; past this the connection is closed on it.
    static let drainLimit = 64 * 1024 * 1024

    private func drain(upTo limit: Int) async throws {
        var iterator = body.makeAsyncIterator()
        try await drain(upTo: limit, from: &iterator)
    }

    private func drain(upTo limit: Int, from iterator: inout RequestBody.AsyncIterator) async throws {
        var dropped = 0
        while dropped <= limit, let chunk = try await iterator.next() { dropped += chunk.readableBytes }
    }

    /// Decodes a JSON body; an empty body decodes as `empty`.
    func decodeJSON<T: Decodable>(_ type: T.Type, limit: Int, empty: T) async throws -> T {
        let buffer = try await body(limit: limit)
        if buffer.readableBytes == 0
            || buffer.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 })
        {
            return empty
        }
        return try APICoding.makeDecoder().decode(T.self, from: Data(buffer.readableBytesView))
    }
}

extension RequestContext {
    /// A path parameter that must be there (the router only matches when it is).
    func pathParameter(_ name: String) throws -> String {
        guard let value = parameters.get(name) else { throw APIError.badRequest("'\(name)' is missing from the path") }
        return value
    }

    /// A positive integer id from the path.
    func idParameter(_ name: String = "id") throws -> Int64 {
        let text = try pathParameter(name)
        guard let id = Int64(text), id > 0 else { throw APIError.badRequest("'\(text)' is not a deployment id") }
        return id
    }
}
