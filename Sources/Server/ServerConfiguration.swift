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
    /// Names a loopback daemon answers to beside loopback addresses and `localhost` (`--allowed-host`): the name a
    /// reverse proxy in front forwards. Any other `Host` gets 421.
    public var allowedHosts: [String]
    /// A connection that sends nothing for this long, whether between requests or inside a request's head or body,
    /// is closed: slowloris heads and stalled bodies do not keep sockets. A response being written (an event
    /// stream, a log being followed) is not idle.
    public var idleTimeout: Duration
    /// The most connections served at once (see `DescriptorBudget`).
    public var maxConnections: Int

    public init(
        host: String = "127.0.0.1", port: Int = 8080, token: String? = nil, isPrivate: Bool = false,
        maxBody: Int = 5 * 1024 * 1024, allowedHosts: [String] = [], idleTimeout: Duration = .seconds(30),
        maxConnections: Int = 1000
    ) {
        self.host = host
        self.port = port
        self.token = token?.isEmpty == true ? nil : token
        self.isPrivate = isPrivate
        self.maxBody = maxBody
        self.allowedHosts = allowedHosts
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
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

    /// `localhost`, `::1` or an IPv4 address in 127.0.0.0/8, written as an address (so `127.example.com`, a name
    /// anyone can point anywhere, is not loopback).
    public static func isLoopback(_ host: String) -> Bool {
        let bracketed = host.hasPrefix("[") && host.hasSuffix("]")
        let trimmed = (bracketed ? String(host.dropFirst().dropLast()) : host).lowercased()
        if trimmed == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, trimmed, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, trimmed, &v6) == 1 else { return false }
        return withUnsafeBytes(of: &v6) { Array($0) } == Array(repeating: 0, count: 15) + [1]
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
