import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

extension Response {
    /// A JSON response in the API's encoding.
    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONCoding.data(value)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// JSON that is already encoded.
    static func json(bytes: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: bytes))
    }

    static func text(_ text: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

extension Request {
    /// The body, at most `limit` bytes: a larger one is refused with 413 before it is read, when it says its size,
    /// and as soon as it passes the limit when it does not.
    func body(limit: Int) async throws -> ByteBuffer {
        if let length = headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError.tooLarge(limit)
        }
        do {
            return try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit)
        }
    }

    /// Decodes a JSON body; an empty body decodes as `empty`.
    func decodeJSON<T: Decodable>(_ type: T.Type, limit: Int, empty: T) async throws -> T {
        let buffer = try await body(limit: limit)
        if buffer.readableBytes == 0 || buffer.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return empty
        }
        return try JSONCoding.decoder().decode(T.self, from: Data(buffer.readableBytesView))
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

/// Formats Server-Sent Events.
enum SSE {
    static let headers: HTTPFields = [
        .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no",
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
}

/// One encoded response, valid for one generation of the data it was made from.
final class EncodedCache: Sendable {
    private let entry = Mutex<(generation: UInt64, bytes: ByteBuffer)?>(nil)

    func bytes(for generation: UInt64) -> ByteBuffer? {
        entry.withLock { $0?.generation == generation ? $0?.bytes : nil }
    }

    /// Stores `bytes` made from `generation`. Data newer than the request that made them may already exist; the
    /// generation then differs and the next request rebuilds.
    func store(_ bytes: ByteBuffer, for generation: UInt64) {
        entry.withLock { $0 = (generation, bytes) }
    }
}
