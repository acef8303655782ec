import Foundation
import PostgresNIO

/// Where a PostgreSQL store lives, read from `--store postgres://USER:PASSWORD@HOST:PORT/DB`.
///
/// `sslmode` works as libpq's does: `disable`; `prefer` (the default) and `require` encrypt without checking the
/// server's certificate; `verify-ca` and `verify-full` check it against the system's CAs. Without a password in the
/// URL, `PGPASSWORD` from the environment is used, so that the password need not be on the command line.
public struct PostgresLocation: Sendable, Equatable {
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode

    /// Parses a `postgres://` (or `postgresql://`) URL; nil when `text` is not one.
    public init?(
        url text: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(DeployError) {
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") else { return nil }
        guard let url = URLComponents(string: text), let host = url.host, !host.isEmpty else {
            throw .invalid(
                "--store: '\(Self.hidingPassword(text))' is not a URL like postgres://USER:PASSWORD@HOST:PORT/DB")
        }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        port = url.port ?? 5432
        user = url.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? environment["PGUSER"] ?? "postgres"
        password = url.percentEncodedPassword.flatMap { $0.removingPercentEncoding } ?? environment["PGPASSWORD"]
        let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        database = path.isEmpty ? user : path
        let mode = url.queryItems?.first { $0.name == "sslmode" }?.value ?? SSLMode.prefer.rawValue
        guard let sslMode = SSLMode(rawValue: mode) else {
            let modes = SSLMode.allCases.map(\.rawValue).joined(separator: ", ")
            throw .invalid("--store: sslmode '\(mode)' is not one of \(modes)")
        }
        self.sslMode = sslMode
    }

    /// Host, port and database, for messages: never the password.
    public var address: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(shownHost):\(port)/\(database)"
    }

    var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: clientTLS)
        configuration.options.connectTimeout = PostgresLink.connectLimit
        configuration.options.maximumConnections = 16
        return configuration
    }

    /// One connection's settings, for LISTEN and the probe that finds the database back.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: tlsConfiguration))
        case .require, .verifyCA, .verifyFull: tls = .require(try NIOSSLContext(configuration: tlsConfiguration))
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .init(PostgresLink.connectLimit)
        return configuration
    }

    private var tlsConfiguration: TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case .disable, .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        return tls
    }

    private var clientTLS: PostgresClient.Configuration.TLS {
        switch sslMode {
        case .disable: .disable
        case .prefer: .prefer(tlsConfiguration)
        case .require, .verifyCA, .verifyFull: .require(tlsConfiguration)
        }
    }

    /// `text` with the password part of its URL replaced by `***`.
    static func hidingPassword(_ text: String) -> String {
        guard var url = URLComponents(string: text), url.password != nil else { return text }
        url.password = "***"
        return url.string ?? "postgres://***"
    }
}

extension PostgresLocation: CustomStringConvertible, CustomDebugStringConvertible {
    /// The URL without its password, so that printing a configuration never shows it.
    public var description: String { "postgres://\(user)@\(address)" }
    public var debugDescription: String { description }
}
