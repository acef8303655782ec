import ArgumentParser
import Deploy
import Foundation
import GitKit
import Logging
import NIOCore
import Pipeline
import Prometheus
import Server
import SlipwayClient

/// `slipway serve`: the daemon.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the daemon: watch the apps in --pipelines and serve the API.",
        discussion: """
            SIGTERM or SIGINT stops it gracefully; SIGHUP reloads the pipeline files (so does a change to them).
            Credentials for private repositories come from the environment: SLIPWAY_SSH_KEY (a private key file, \
            with SLIPWAY_SSH_PASSPHRASE if needed) or a running ssh-agent (SSH_AUTH_SOCK), and SLIPWAY_HTTPS_TOKEN \
            (with SLIPWAY_HTTPS_USERNAME) for HTTPS. Each goes only to the host of the repository being fetched \
            (or to SLIPWAY_SSH_KEY_HOSTS / SLIPWAY_HTTPS_TOKEN_HOSTS), and the token never over http:// unless \
            SLIPWAY_ALLOW_INSECURE_HTTP=1. SSH host keys are checked strictly against ~/.ssh/known_hosts and \
            /etc/ssh/ssh_known_hosts (or SLIPWAY_SSH_KNOWN_HOSTS); ~/.ssh/config applies (or SLIPWAY_SSH_CONFIG).
            """)

    @Option(help: "The folder of pipeline files.") var pipelines = "./pipelines"
    @Option(help: "The state folder: the store, mirrors, logs.") var state = "./.slipway"
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port to listen on (or SLIPWAY_PORT; default 8080).") var port: Int?
    @Option(help: "The API token (or SLIPWAY_TOKEN).") var token: String?
    @Option(help: "The webhook secret for apps without their own (or SLIPWAY_WEBHOOK_SECRET).") var webhookSecret:
        String?
    @Option(help: "How many apps may deploy at the same time.") var jobs = 2
    @Flag(name: .customLong("private"), help: "Require the token for GET requests too.") var isPrivate = false
    @Option(help: "The largest request body, in bytes (suffixes K, M, KiB, MiB).") var maxBody = "5MiB"
    @Option(help: "How long running deployments get to finish on shutdown (like 30s, 5m).") var shutdownGrace = "30s"
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel = "info"
    @Option(help: "How long a fetch may wait to connect to a remote.") var connectTimeout = "30s"
    @Option(help: "How long a fetch may wait for the next byte from a connected remote.") var networkTimeout = "2m"
    @Option(help: "A PEM file of CA certificates that HTTPS remotes are trusted by, beside the system's.")
    var caFile: String?
    @Option(help: "How long a connection may send nothing, between requests or inside one, before it is closed.")
    var idleTimeout = "30s"
    @Option(
        name: .customLong("allowed-host"),
        help: "A name the daemon answers to beside loopback addresses and localhost, as a proxy in front forwards it.")
    var allowedHosts: [String] = []
    @Option(
        help: """
            sqlite (the default: <state>/slipway.sqlite) or postgres://USER:PASSWORD@HOST:PORT/DB (or SLIPWAY_STORE; \
            without a password in the URL, PGPASSWORD is used).
            """)
    var store: String?
    @Option(help: "This daemon's name among several (or SLIPWAY_NODE); the host name by default.") var node: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard (1...64).contains(jobs) else { throw ClientError.usage("--jobs must be from 1 to 64") }
        let port = try self.port ?? Self.port(fromEnvironment: environment["SLIPWAY_PORT"])
        guard (0...65535).contains(port) else { throw ClientError.usage("--port \(port) is not a port (0 to 65535)") }
        guard let maxBodyBytes = ByteCount.parse(maxBody) else {
            throw ClientError.usage("--max-body '\(maxBody)' is not a size")
        }
        guard let grace = DurationText.parse(shutdownGrace) else {
            throw ClientError.usage("--shutdown-grace '\(shutdownGrace)' is not a duration")
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ClientError.usage("--log-level '\(logLevel)' is unknown")
        }
        guard let connect = DurationText.parse(connectTimeout) else {
            throw ClientError.usage("--connect-timeout '\(connectTimeout)' is not a duration")
        }
        guard let idle = DurationText.parse(networkTimeout) else {
            throw ClientError.usage("--network-timeout '\(networkTimeout)' is not a duration")
        }
        guard let idleLimit = DurationText.parse(idleTimeout), idleLimit > .zero else {
            throw ClientError.usage("--idle-timeout '\(idleTimeout)' is not a duration")
        }
        let storeChoice: StoreChoice
        do {
            storeChoice = try StoreChoice(parsing: store ?? environment["SLIPWAY_STORE"] ?? "sqlite")
        } catch {
            throw ClientError.usage("\(error)")
        }
        let nodeName = node ?? environment["SLIPWAY_NODE"].flatMap { $0.isEmpty ? nil : $0 }
        if let nodeName, nodeName.isEmpty { throw ClientError.usage("--node must not be empty") }
        let server = ServerConfiguration(
            host: host, port: port, token: token ?? environment["SLIPWAY_TOKEN"], isPrivate: isPrivate,
            maxBody: maxBodyBytes, allowedHosts: allowedHosts, idleTimeout: idleLimit,
            maxConnections: DescriptorBudget.raisingTheSoftLimit().maxConnections)
        do {
            try server.validate()
        } catch {
            throw ClientError.usage("\(error)")
        }
        guard FileManager.default.fileExists(atPath: pipelines) else {
            throw ClientError.usage("the pipelines folder \(pipelines) does not exist")
        }
        // Before anything else touches the state, recovery included: one daemon per state directory.
        let lock: StateLock
        do {
            lock = try StateLock(stateDirectory: state)
        } catch {
            throw ClientError.failed("\(error)")
        }

        LoggingSystem.bootstrap { label in
            var handler = DeferredMetadataLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "slipway")
        let registry = PrometheusCollectorRegistry()
        let daemon = try await Daemon.open(
            configuration: DaemonConfiguration(
                pipelinesDirectory: pipelines, stateDirectory: state, jobs: jobs, shutdownGrace: grace,
                credentials: DaemonConfiguration.credentials(from: environment),
                webhookSecret: webhookSecret ?? environment["SLIPWAY_WEBHOOK_SECRET"],
                nodeName: nodeName ?? ProcessInfo.processInfo.hostName,
                networkTimeouts: NetworkTimeouts(connect: connect, idle: idle),
                caFile: caFile ?? environment["SLIPWAY_CA_FILE"], store: storeChoice, environment: environment,
                forwarderCommand: [Self.executable, "forward"]),
            metrics: SlipwayMetrics(factory: PrometheusMetricsFactory(registry: registry)), logger: logger)
        try await daemon.prepare()
        logger.info("store: \(storeChoice)")
        logger.info("\(daemon.appNames.count) app(s) from \(pipelines): \(daemon.appNames.joined(separator: ", "))")
        let application = try buildApplication(
            engine: daemon, services: daemon.services, configuration: server, registry: registry, logger: logger,
            onServerRunning: { port in
                lock.record(port: port)
                logger.notice("listening on http://\(host):\(port)")
            })
        do {
            try await application.runService()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw ClientError.failed("\(host):\(port) is in use by another program; choose another --port")
        } catch let error as IOError where error.errnoCode == EADDRNOTAVAIL {
            throw ClientError.failed("\(host) is not an address of this machine; choose another --host")
        }
        await daemon.stopSupervising()
        logger.notice("stopped")
        withExtendedLifetime(lock) {}
    }

    /// The port `SLIPWAY_PORT` names, or 8080 when it is not set.
    static func port(fromEnvironment value: String?) throws(ClientError) -> Int {
        guard let value, !value.isEmpty else { return 8080 }
        guard let port = Int(value) else { throw .usage("SLIPWAY_PORT '\(value)' is not a port (0 to 65535)") }
        return port
    }

    /// This very binary, to start the forwarders of public ports with.
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
