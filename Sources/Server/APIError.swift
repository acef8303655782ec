import Deploy
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import SlipwayAPI

/// The one error type of the HTTP layer, and the one place any error becomes the API's error JSON:
/// `{"error": {"code": "not_found", "message": "…"}}` with the matching status.
struct APIError: Error, HTTPResponseError, Sendable {
    let status: HTTPResponse.Status
    let code: String
    let message: String
    /// After this answer the connection cannot be used again: the rest of the request was not or cannot be read.
    let closesConnection: Bool

    init(status: HTTPResponse.Status, code: String, message: String, closesConnection: Bool = false) {
        self.status = status
        self.code = code
        self.message = message
        self.closesConnection = closesConnection || status == .contentTooLarge
    }

    static func badRequest(_ message: String) -> APIError {
        APIError(status: .badRequest, code: "bad_request", message: message)
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(status: .unauthorized, code: "unauthorized", message: message)
    }

    static func notFound(_ message: String) -> APIError {
        APIError(status: .notFound, code: "not_found", message: message)
    }

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(
            status: .contentTooLarge, code: "payload_too_large",
            message: "the body is larger than the limit of \(limit) bytes")
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = (try? APICoding.encode(API.ErrorBody(code: code, message: message))) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if closesConnection { headers[.connection] = "close" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Deploy's errors, case by case.
    init(_ error: DeployError) {
        switch error {
        case .unknownApp, .notFound: self = .notFound(error.description)
        case .conflict, .configuration: self = APIError(status: .conflict, code: "conflict", message: error.description)
        case .invalid: self = .badRequest(error.description)
        case .unauthenticated: self = .unauthorized(error.description)
        case .repositoryUnavailable:
            self = APIError(status: .badGateway, code: "repository_unavailable", message: error.description)
        case .store(.full):
            self = APIError(
                status: HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage"), code: "storage_full",
                message: "the state disk is full")
        case .store(.unavailable):
            self = APIError(
                status: .serviceUnavailable, code: "store_unavailable",
                message: "the store cannot be reached just now; try again shortly")
        case .store(.failed):
            self = APIError(
                status: .internalServerError, code: "internal", message: "the store could not be read or written")
        case .internalFailure:
            self = APIError(status: .internalServerError, code: "internal", message: error.description)
        }
    }

    /// Any error, as the API reports it. Errors from below (Deploy, Hummingbird, NIO, decoding) are translated
    /// here and nowhere else.
    init(_ error: any Error, maxBody: Int) {
        switch error {
        case let error as APIError:
            self = error
        case let error as DeployError:
            self.init(error)
        case is NIOTooManyBytesError:
            self = .tooLarge(maxBody)
        case let error as HTTPParserError:
            self = APIError(
                status: .badRequest, code: "bad_request", message: "the request is not valid HTTP: \(error)",
                closesConnection: true)
        case let error as DecodingError:
            self = .badRequest("the body is not valid JSON for this request: \(Self.describe(error))")
        case let error as HTTPError:
            self.init(error, maxBody: maxBody)
        case let error as any HTTPResponseError:
            self = APIError(
                status: error.status, code: error.status.code < 500 ? "bad_request" : "internal",
                message: error.status.reasonPhrase)
        default:
            self = APIError(status: .internalServerError, code: "internal", message: "an unexpected server error")
        }
    }

    private init(_ error: HTTPError, maxBody: Int) {
        switch error.status {
        case .notFound: self = .notFound(error.body ?? "there is no such route")
        case .methodNotAllowed:
            self = APIError(
                status: .methodNotAllowed, code: "method_not_allowed", message: "that method is not allowed here")
        case .contentTooLarge: self = .tooLarge(maxBody)
        case .unauthorized: self = .unauthorized(error.body ?? "unauthorized")
        default:
            self = APIError(
                status: error.status, code: error.status.code < 500 ? "bad_request" : "internal",
                message: error.body ?? error.status.reasonPhrase)
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return keys.isEmpty ? "" : " at '\(keys)'"
        }
        switch error {
        case .dataCorrupted(let context): return "malformed JSON\(path(context))"
        case .keyNotFound(let key, let context): return "'\(key.stringValue)' is missing\(path(context))"
        case .typeMismatch(_, let context): return "wrong type\(path(context)): \(context.debugDescription)"
        case .valueNotFound(_, let context): return "a value is missing\(path(context))"
        @unknown default: return "\(error)"
        }
    }
}
