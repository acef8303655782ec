import Deploy
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// The one error type of the HTTP layer, and the one place any error becomes the API's error JSON:
/// `{"error": {"code": "not_found", "message": "…"}}` with the matching status.
struct APIError: Error, HTTPResponseError, Sendable {
    let status: HTTPResponse.Status
    let code: String
    let message: String

    init(status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func badRequest(_ message: String) -> APIError { APIError(status: .badRequest, code: "bad_request", message: message) }
    static func unauthorized(_ message: String) -> APIError { APIError(status: .unauthorized, code: "unauthorized", message: message) }
    static func notFound(_ message: String) -> APIError { APIError(status: .notFound, code: "not_found", message: message) }
    static func conflict(_ message: String) -> APIError { APIError(status: .conflict, code: "conflict", message: message) }
    static func tooLarge(_ limit: Int) -> APIError {
        APIError(status: .contentTooLarge, code: "payload_too_large", message: "the body is larger than the limit of \(limit) bytes")
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = ["error": ["code": code, "message": message]]
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Any error, as the API reports it. Errors from below (the Deploy layer, Hummingbird, NIO, decoding) are
    /// translated here and nowhere else.
    init(_ error: any Error, maxBody: Int) {
        switch error {
        case let error as APIError:
            self = error
        case let error as DeployError:
            switch error {
            case .unknownApp, .notFound: self = .notFound(error.description)
            case .conflict, .configuration: self = .conflict(error.description)
            case .invalid: self = .badRequest(error.description)
            case .unavailable:
                self = APIError(status: .badGateway, code: "repository_unavailable", message: error.description)
            case .failed: self = APIError(status: .internalServerError, code: "internal", message: error.description)
            }
        case is NIOTooManyBytesError:
            self = .tooLarge(maxBody)
        case let error as DecodingError:
            self = .badRequest("the body is not valid JSON for this request: \(Self.describe(error))")
        case let error as HTTPError:
            switch error.status {
            case .notFound: self = .notFound(error.body ?? "there is no such route")
            case .methodNotAllowed: self = APIError(status: .methodNotAllowed, code: "method_not_allowed", message: "that method is not allowed here")
            case .contentTooLarge: self = .tooLarge(maxBody)
            case .unauthorized: self = .unauthorized(error.body ?? "unauthorized")
            default:
                self = APIError(status: error.status, code: error.status.code < 500 ? "bad_request" : "internal", message: error.body ?? error.status.reasonPhrase)
            }
        case let error as any HTTPResponseError:
            self = APIError(status: error.status, code: error.status.code < 500 ? "bad_request" : "internal", message: "\(error)")
        default:
            self = APIError(status: .internalServerError, code: "internal", message: "internal error: \(error)")
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

/// The routes the server has, by path template, to tell "no such path" (404) from "not with this method" (405).
final class RouteTable: Sendable {
    private let routes = Mutex<[(method: String, segments: [Substring])]>([])

    func set(_ routes: [(method: String, path: String)]) {
        self.routes.withLock { $0 = routes.map { ($0.method, $0.path.split(separator: "/")) } }
    }

    /// The methods allowed on `path`, or none when no route has that path.
    func methods(for path: String) -> [String] {
        let segments = path.split(separator: "/")
        return routes.withLock { routes in
            routes.filter { route in
                route.segments.count == segments.count
                    && zip(route.segments, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
            }.map(\.method)
        }
    }
}

/// Turns every error thrown below it into the API's error JSON.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBody: Int
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            var apiError = APIError(error, maxBody: maxBody)
            // The router's own 404 (no route matched), as opposed to a route that found nothing.
            if let routerError = error as? HTTPError, routerError.status == .notFound {
                let allowed = routes.methods(for: request.uri.path)
                if !allowed.isEmpty {
                    apiError = APIError(
                        status: .methodNotAllowed, code: "method_not_allowed",
                        message: "\(request.method) is not allowed here; use \(allowed.sorted().joined(separator: " or "))")
                    var response = try apiError.response(from: request, context: context)
                    response.headers[.allow] = Set(allowed).sorted().joined(separator: ", ")
                    return response
                }
            }
            if apiError.status.code >= 500 {
                context.logger.error("\(request.method) \(request.uri.path): \(error)")
            }
            return try apiError.response(from: request, context: context)
        }
    }
}
