import Foundation
import Hummingbird
import NIOCore
import SlipwayAPI

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
