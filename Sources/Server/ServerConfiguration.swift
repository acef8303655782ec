import Foundation

/// How the HTTP side of `slipway serve` is set up.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// With a token, every POST under `/api/v1` and `/hooks/push` needs `Authorization: Bearer <token>`.
    public var token: String?
    /// With `isPrivate`, GET requests need the token too (except `/healthz` and the dashboard's page itself).
    public var isPrivate: Bool
    /// Larger bodies get 413.
    public var maxBody: Int

    public init(
        host: String = "127.0.0.1", port: Int = 8080, token: String? = nil, isPrivate: Bool = false,
        maxBody: Int = 5 * 1024 * 1024
    ) {
        self.host = host
        self.port = port
        self.token = token?.isEmpty == true ? nil : token
        self.isPrivate = isPrivate
        self.maxBody = maxBody
    }

    /// The daemon refuses to listen beyond loopback without a token: anyone who can reach it could deploy.
    public func validate() throws {
        if token == nil && !Self.isLoopback(host) {
            throw ConfigurationError(
                message: "refusing to listen on \(host) without a token; set --token or SLIPWAY_TOKEN, or use 127.0.0.1"
            )
        }
        if isPrivate && token == nil {
            throw ConfigurationError(message: "--private needs a token (--token or SLIPWAY_TOKEN)")
        }
    }

    public static func isLoopback(_ host: String) -> Bool {
        let trimmed = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return trimmed == "localhost" || trimmed == "::1" || trimmed.hasPrefix("127.")
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
