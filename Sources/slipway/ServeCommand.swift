import ArgumentParser
import Deploy
import Foundation
import GitKit
import Logging
import Pipeline
import Prometheus
import Server

/// `slipway serve`: the daemon.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the daemon: watch the apps in --pipelines and serve the API.",
        discussion: """
            SIGTERM or SIGINT stops it gracefully; SIGHUP reloads the pipeline files (so does a change to them).
            Credentials for private repositories come from the environment: SLIPWAY_SSH_KEY (a private key file, \
            with SLIPWAY_SSH_PUBLIC_KEY and SLIPWAY_SSH_PASSPHRASE if needed) or a running ssh-agent \
            (SSH_AUTH_SOCK), and SLIPWAY_HTTPS_TOKEN (with SLIPWAY_HTTPS_USERNAME) for HTTPS.
            """)

    @Option(help: "The folder of pipeline files.") var pipelines = "./pipelines"
    @Option(help: "The state folder: the store, mirrors, logs.") var state = "./.slipway"
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port to listen on.") var port = 8080
    @Option(help: "The API token (or SLIPWAY_TOKEN).") var token: String?
    @Option(help: "The webhook secret for apps without their own (or SLIPWAY_WEBHOOK_SECRET).") var webhookSecret: String?
    @Option(help: "How many apps may deploy at the same time.") var jobs = 2
    @Flag(name: .customLong("private"), help: "Require the token for GET requests too.") var isPrivate = false
    @Option(help: "The largest request body, in bytes (suffixes K, M, KiB, MiB).") var maxBody = "5MiB"
    @Option(help: "How long running deployments get to finish on shutdown (like 30s, 5m).") var shutdownGrace = "30s"
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel = "info"

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard (1...64).contains(jobs) else { throw CommandFailure.usage("--jobs must be from 1 to 64") }
        guard let maxBodyBytes = ByteSize.parse(maxBody) else { throw CommandFailure.usage("--max-body '\(maxBody)' is not a size") }
        guard let grace = DurationText.parse(shutdownGrace) else {
            throw CommandFailure.usage("--shutdown-grace '\(shutdownGrace)' is not a duration")
        }
        guard let level = Logger.Level(rawValue: logLevel) else { throw CommandFailure.usage("--log-level '\(logLevel)' is unknown") }
        let server = ServerConfiguration(
            host: host, port: port, token: token ?? environment["SLIPWAY_TOKEN"], isPrivate: isPrivate,
            webhookSecret: webhookSecret ?? environment["SLIPWAY_WEBHOOK_SECRET"], maxBody: maxBodyBytes)
        do {
            try server.validate()
        } catch {
            throw CommandFailure.usage("\(error)")
        }
        guard FileManager.default.fileExists(atPath: pipelines) else {
            throw CommandFailure.usage("the pipelines folder \(pipelines) does not exist")
        }

        LoggingSystem.bootstrap { label in
            var handler = DeferredMetadataLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "slipway")
        let registry = PrometheusCollectorRegistry()
        let daemon = try Daemon(
            configuration: DaemonConfiguration(
                pipelinesDirectory: pipelines, stateDirectory: state, jobs: jobs, shutdownGrace: grace,
                credentials: Self.credentials(environment), environment: environment),
            metrics: SlipwayMetrics(factory: PrometheusMetricsFactory(registry: registry)), logger: logger)
        try await daemon.prepare()
        let apps = daemon.registry.all
        logger.info("\(apps.count) app(s) from \(pipelines): \(apps.map(\.name).joined(separator: ", "))")
        let application = try buildApplication(
            daemon: daemon, configuration: server, registry: registry, logger: logger,
            onServerRunning: { port in logger.notice("listening on http://\(host):\(port)") })
        try await application.runService()
    }

    static func credentials(_ environment: [String: String]) -> Credentials {
        var credentials = Credentials()
        if let key = environment["SLIPWAY_SSH_KEY"], !key.isEmpty {
            credentials.sshKey = .init(
                privateKeyPath: key, publicKeyPath: environment["SLIPWAY_SSH_PUBLIC_KEY"],
                passphrase: environment["SLIPWAY_SSH_PASSPHRASE"])
        }
        credentials.useSSHAgent = environment["SSH_AUTH_SOCK"] != nil
        credentials.httpsToken = environment["SLIPWAY_HTTPS_TOKEN"]
        if let user = environment["SLIPWAY_HTTPS_USERNAME"], !user.isEmpty { credentials.httpsUsername = user }
        return credentials
    }
}

enum ByteSize {
    /// `5242880`, `512K`, `5M`, `5MiB`, `1G`.
    static func parse(_ text: String) -> Int? {
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30),
            ("B", 1),
        ]
        for (suffix, size) in units where text.hasSuffix(suffix) {
            guard let number = Int(text.dropLast(suffix.count)), number > 0 else { return nil }
            return number * size
        }
        return Int(text).flatMap { $0 > 0 ? $0 : nil }
    }
}
