import Deploy
import Foundation
import HTTPTypes
import Hummingbird

/// Keeps web pages the operator happens to open from using the daemon through their browser.
///
/// Without a token (the default on loopback), any page could otherwise post a "simple" cross-site form to
/// `127.0.0.1:8080` and roll an app back, and a page served from a name that an attacker re-points at 127.0.0.1
/// (DNS rebinding) could read apps, deployments and logs as if it were the dashboard. Three rules, as the contract
/// states them:
///
/// - **Host**: while the daemon listens on loopback, a request whose `Host` names anything but a loopback address,
///   `localhost` or a name allowed with `--allowed-host` is refused with 421. A rebinding page's requests carry its
///   own name there. A request without `Host` (HTTP/1.0 tools) comes from no browser and passes.
/// - **Origin**: a request that changes state and that the browser marks as sent by another page is refused with
///   403, token or not. `Sec-Fetch-Site` must be `same-origin` or `none` (typed or bookmarked) when present:
///   `same-site` is refused too, because every `localhost` port is the same site. `Origin`, when present, must
///   name the host and port the request was sent to.
/// - **Body type**: a body sent to a POST under `/api/v1` must be `application/json`. A browser cannot send that
///   cross-site without asking first (a CORS preflight, which the daemon never grants).
///
/// Forge webhooks are exempt from the last two rules: forges send form-encoded bodies and no browser headers, and
/// their signatures authenticate them.
struct BrowserGuardMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Checked only when the daemon listens on loopback; beyond it a reverse proxy or the network decides names.
    let checksHost: Bool
    /// Lower-cased names allowed beside loopback addresses and `localhost`, without ports.
    let allowedHosts: Set<String>

    init(listeningOn host: String, allowedHosts: [String]) {
        checksHost = ServerConfiguration.isLoopback(host)
        self.allowedHosts = Set(allowedHosts.map { $0.lowercased() })
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if checksHost, let authority = request.head.authority, !isAllowed(authority: authority) {
            throw APIError(
                status: HTTPResponse.Status(code: 421, reasonPhrase: "Misdirected Request"),
                code: "misdirected_request",
                message:
                    "this daemon does not answer to the host '\(authority)'; allow it with --allowed-host if a proxy forwards it"
            )
        }
        guard changesState(request), !isForgeWebhook(request) else { return try await next(request, context) }
        if let reason = crossSiteReason(request) {
            throw APIError(
                status: .forbidden, code: "forbidden",
                message:
                    "a request that changes state must come from this daemon's own pages or a client, not \(reason)"
            )
        }
        if isUnderAPI(request), !hasJSONOrNoBody(request) {
            throw APIError(
                status: .unsupportedMediaType, code: "unsupported_media_type",
                message: "the body must be JSON, sent with Content-Type: application/json")
        }
        return try await next(request, context)
    }

    private func changesState(_ request: Request) -> Bool {
        request.method != .get && request.method != .head && request.method != .options
    }

    private func segments(_ request: Request) -> [Substring] {
        request.uri.path.split(separator: "/")
    }

    private func isForgeWebhook(_ request: Request) -> Bool {
        let segments = segments(request)
        return segments.count == 2 && segments[0] == "hooks" && Forge(rawValue: String(segments[1])) != nil
    }

    private func isUnderAPI(_ request: Request) -> Bool {
        let segments = segments(request)
        return segments.count >= 2 && segments[0] == "api" && segments[1] == "v1"
    }

    /// A browser labels every body it sends, so a type that is not JSON is refused, and so is an unlabelled body
    /// of a stated length. (An unlabelled chunked request is let through: clients send an empty POST that way, and no
    /// browser does.)
    private func hasJSONOrNoBody(_ request: Request) -> Bool {
        guard let contentType = request.headers[.contentType] else {
            return request.headers[.contentLength].map { $0 == "0" } ?? true
        }
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
        return mediaType?.lowercased() == "application/json"
    }

    /// Why the browser's own headers say that another page sent this request, or nil when they do not.
    private func crossSiteReason(_ request: Request) -> String? {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!]?.lowercased(),
            site != "same-origin" && site != "none"
        {
            return "from another site (Sec-Fetch-Site: \(site))"
        }
        guard let origin = request.headers[HTTPField.Name("Origin")!] else { return nil }
        guard let originURL = URLComponents(string: origin), let originHost = originURL.host, origin != "null" else {
            return "from a page without an origin (Origin: \(origin))"
        }
        guard let authority = request.head.authority else { return "from \(origin)" }
        let (host, port) = Self.split(authority: authority)
        let originPort = originURL.port ?? (originURL.scheme == "https" ? 443 : 80)
        let sentPort = port ?? (originURL.scheme == "https" ? 443 : 80)
        let sameHost = Self.bare(originHost).lowercased() == Self.bare(host).lowercased()
        return sameHost && originPort == sentPort ? nil : "from \(origin)"
    }

    private func isAllowed(authority: String) -> Bool {
        let host = Self.bare(Self.split(authority: authority).host).lowercased()
        return ServerConfiguration.isLoopback(host) || host == "localhost." || allowedHosts.contains(host)
    }

    /// `host:port`, `[v6]:port`, `host` or `[v6]`, as a host and an optional port.
    static func split(authority: String) -> (host: String, port: Int?) {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            let host = String(authority[...close])
            let rest = authority[authority.index(after: close)...]
            return (host, rest.hasPrefix(":") ? Int(rest.dropFirst()) : nil)
        }
        let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2 { return (String(parts[0]), Int(parts[1])) }
        return (authority, nil)
    }

    /// An IPv6 address without its brackets.
    private static func bare(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }
}
