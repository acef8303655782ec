import Hummingbird

/// Turns every error thrown below it into the API's error JSON.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBody: Int
    let routes: RouteTable

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            var apiError = APIError(error, maxBody: maxBody)
            // The router's own 404 (no route matched), as opposed to a route that found nothing.
            if let routerError = error as? HTTPError, routerError.status == .notFound {
                var allowed = routes.methods(for: request.uri.path)
                if allowed.contains("GET") { allowed.append("HEAD") }
                if !allowed.isEmpty {
                    apiError = APIError(
                        status: .methodNotAllowed, code: "method_not_allowed",
                        message:
                            "\(request.method) is not allowed here; use \(allowed.sorted().joined(separator: " or "))")
                    var response = try apiError.response(from: request, context: context)
                    response.headers[.allow] = Set(allowed).sorted().joined(separator: ", ")
                    return response
                }
            }
            if apiError.status.code >= 500 {
                // The whole error goes to the operator's log; the client gets words only.
                context.logger.error("\(request.method) \(request.uri.path): \(error)")
            }
            return try apiError.response(from: request, context: context)
        }
    }
}
