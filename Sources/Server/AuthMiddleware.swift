import Deploy
import Foundation
import HTTPTypes
import Hummingbird

/// Checks `Authorization: Bearer <token>` where the contract asks for it: every request that can change
/// something (every POST under `/api/v1`, and `/hooks/push`), and with `--private` every GET except `/healthz`
/// and the dashboard page. Forge webhooks are authenticated by their signatures instead.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?
    let isPrivate: Bool

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws
        -> Response
    {
        guard let token, needsToken(request) else { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            constantTimeEquals(String(header.dropFirst("Bearer ".count)), token)
        else {
            throw APIError.unauthorized("a valid token is needed: Authorization: Bearer <token>")
        }
        return try await next(request, context)
    }

    /// Decided on the path's segments, as the router matches them (it ignores empty ones: `/hooks//push/` reaches
    /// `/hooks/push`), and closed by default: every POST needs the token except the forges' own routes.
    private func needsToken(_ request: Request) -> Bool {
        let segments = request.uri.path.split(separator: "/")
        if request.method == .get || request.method == .head {
            return isPrivate && segments != ["healthz"] && !segments.isEmpty
        }
        let isForgeWebhook =
            segments.count == 2 && segments[0] == "hooks" && Forge(rawValue: String(segments[1])) != nil
        return !isForgeWebhook
    }
}
