import Foundation
import GitKit
import Logging
import Pipeline
import ServiceLifecycle
import SlipwayAPI
import UnixSignals

/// What `slipway serve` is configured with.
public struct DaemonConfiguration: Sendable {
    public var pipelinesDirectory: String
    public var stateDirectory: String
    public var jobs: Int
    public var shutdownGrace: Duration
    public var credentials: Credentials
    /// The secret for forge webhooks of apps that have no `webhook_secret` of their own.
    public var webhookSecret: String?
    /// This daemon's name among several (`--node`); the host name by default.
    public var nodeName: String
    /// Bounds on every wait of a fetch or a listing of remote heads.
    public var networkTimeouts: NetworkTimeouts
    /// A PEM file of CA certificates that HTTPS remotes are trusted by, beside the system's.
    public var caFile: String?
    /// Where the records are kept (`--store`).
    public var store: StoreChoice
    public var environment: [String: String]
    /// How to start the forwarder of an app's public port: the `slipway` executable and `forward`. Nil (a daemon
    /// inside a test runner) serves no public port.
    public var forwarderCommand: [String]?

    public init(
        pipelinesDirectory: String, stateDirectory: String, jobs: Int = 2, shutdownGrace: Duration = .seconds(30),
        credentials: Credentials = .none, webhookSecret: String? = nil,
        nodeName: String = ProcessInfo.processInfo.hostName, networkTimeouts: NetworkTimeouts = .default,
        caFile: String? = nil, store: StoreChoice = .sqlite,
        environment: [String: String] = ProcessInfo.processInfo.environment, forwarderCommand: [String]? = nil
    ) {
        self.pipelinesDirectory = pipelinesDirectory
        self.stateDirectory = stateDirectory
        self.jobs = jobs
        self.shutdownGrace = shutdownGrace
        self.credentials = credentials
        self.webhookSecret = webhookSecret?.isEmpty == true ? nil : webhookSecret
        self.nodeName = nodeName
        self.networkTimeouts = networkTimeouts
        self.caFile = caFile
        self.store = store
        self.environment = environment
        self.forwarderCommand = forwarderCommand
    }
}

extension DaemonConfiguration {
    /// Credentials for private repositories, from the daemon's environment (never from pipeline files):
    /// - `SLIPWAY_SSH_KEY` (with `SLIPWAY_SSH_PASSPHRASE` if it has one), or a running ssh-agent (`SSH_AUTH_SOCK`);
    ///   `SLIPWAY_SSH_KNOWN_HOSTS` (files, separated by `:`) and `SLIPWAY_SSH_CONFIG` instead of `~/.ssh`'s;
    /// - `SLIPWAY_HTTPS_TOKEN` with `SLIPWAY_HTTPS_USERNAME`;
    /// - `SLIPWAY_HTTPS_TOKEN_HOSTS` and `SLIPWAY_SSH_KEY_HOSTS` (comma-separated hosts, or `host:port`): where the
    ///   token and the key may go. Without them each goes only to the host of the repository being fetched;
    /// - `SLIPWAY_ALLOW_INSECURE_HTTP=1` lets the token go over plain `http://`, which it never does otherwise.
    public static func credentials(from environment: [String: String]) -> Credentials {
        func list(_ name: String, separator: Character) -> [String] {
            (environment[name] ?? "").split(separator: separator).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
        var credentials = Credentials()
        if let key = environment["SLIPWAY_SSH_KEY"], !key.isEmpty {
            credentials.sshKey = .init(
                privateKeyPath: key, publicKeyPath: environment["SLIPWAY_SSH_PUBLIC_KEY"],
                passphrase: environment["SLIPWAY_SSH_PASSPHRASE"])
        }
        credentials.useSSHAgent = environment["SSH_AUTH_SOCK"] != nil
        credentials.knownHostsFiles = list("SLIPWAY_SSH_KNOWN_HOSTS", separator: ":")
        credentials.sshConfigFile = environment["SLIPWAY_SSH_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        credentials.httpsToken = environment["SLIPWAY_HTTPS_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if let user = environment["SLIPWAY_HTTPS_USERNAME"], !user.isEmpty { credentials.httpsUsername = user }
        credentials.httpsTokenHosts = list("SLIPWAY_HTTPS_TOKEN_HOSTS", separator: ",")
        credentials.sshKeyHosts = list("SLIPWAY_SSH_KEY_HOSTS", separator: ",")
        credentials.allowInsecureHTTP = environment["SLIPWAY_ALLOW_INSECURE_HTTP"] == "1"
        return credentials
    }
}

/// The daemon's core, wired together behind `Engine`: the store, the pipelines, the mirrors, the queue and the
/// intake. The server and the command line talk to it through `Engine` and nothing else.
public final class Daemon: Engine {
    let context: DeployContext
    let registry: AppRegistry
    let mirrors: MirrorPool
    let queue: DeployQueue
    let intake: Intake
    private let nodeName: String
    private let caFile: String?
    private let startedAt = Date()

    /// A daemon on the embedded SQLite store at `<state>/slipway.sqlite`, whatever `configuration.store` says:
    /// `open` opens the store chosen.
    public convenience init(
        configuration: DaemonConfiguration, metrics: SlipwayMetrics = .discarding, logger: Logger
    ) throws(DeployError) {
        let state = URL(fileURLWithPath: configuration.stateDirectory).standardizedFileURL.path
        let store: SQLiteStore
        do {
            store = try SQLiteStore(path: state + "/slipway.sqlite")
        } catch {
            throw .store(error)
        }
        self.init(configuration: configuration, store: store, metrics: metrics, logger: logger)
    }

    /// A daemon on the store `configuration.store` names; a PostgreSQL database is waited for until it answers.
    public static func open(
        configuration: DaemonConfiguration, metrics: SlipwayMetrics = .discarding, logger: Logger
    ) async throws(DeployError) -> Daemon {
        let state = URL(fileURLWithPath: configuration.stateDirectory).standardizedFileURL.path
        let store: any DeployStore
        do {
            store = try await configuration.store.open(state: state, logger: logger)
        } catch {
            throw .store(error)
        }
        return Daemon(configuration: configuration, store: store, metrics: metrics, logger: logger)
    }

    public init(
        configuration: DaemonConfiguration, store: any DeployStore, metrics: SlipwayMetrics = .discarding,
        logger: Logger
    ) {
        let state = URL(fileURLWithPath: configuration.stateDirectory).standardizedFileURL.path
        let events = EventBus()
        context = DeployContext(
            store: store, events: events, stateDirectory: state, daemonEnvironment: configuration.environment,
            metrics: metrics, logger: logger,
            processes: ProcessSupervisor(
                stateDirectory: state, forwarderCommand: configuration.forwarderCommand, events: events,
                logger: logger),
            node: configuration.nodeName)
        registry = AppRegistry(
            directory: configuration.pipelinesDirectory, loader: PipelineLoader(environment: configuration.environment),
            logger: logger)
        mirrors = MirrorPool(
            context: context, credentials: configuration.credentials, timeouts: configuration.networkTimeouts)
        caFile = configuration.caFile
        queue = DeployQueue(
            context: context, registry: registry, mirrors: mirrors, jobs: configuration.jobs,
            shutdownGrace: configuration.shutdownGrace)
        intake = Intake(
            context: context, registry: registry, mirrors: mirrors, queue: queue,
            webhookSecret: configuration.webhookSecret)
        nodeName = configuration.nodeName
    }

    /// Loads the pipelines and brings the store and the disk into agreement. Call once, before serving.
    @discardableResult
    public func prepare() async throws(DeployError) -> RecoveryReport {
        do {
            try LibGit2.checkVersion()
        } catch {
            throw .internalFailure("libgit2 cannot be used: \(error.message)")
        }
        if let caFile { try trust(caFile) }
        await registry.reload(force: true)
        await mirrors.follow(registry.pipelines)
        let report: RecoveryReport
        do {
            report = try await Recovery(context: context).run(pipelines: registry.pipelines)
            try await context.store.pruneDeliveries(olderThan: 7 * 24 * 3600)
            try await HeartbeatService.beat(node: nodeName, startedAt: startedAt, store: context.store)
        } catch {
            throw .store(error)
        }
        // The processes a previous daemon left running are found again, not started again.
        await context.processes.adopt()
        if !report.isClean {
            context.logger.notice("recovered after an unclean stop:")
            for line in report.summary { context.logger.notice("  \(line)") }
        }
        try await queue.resume()
        return report
    }

    /// The apps defined by the pipeline files, by name.
    public var appNames: [String] { registry.all.map(\.name) }

    /// The folder of the mirror `app` deploys from (shared with the apps that follow the same repository), for
    /// tools that read it; nil for an app with no valid pipeline.
    public func mirrorPath(app: String) -> String? {
        registry.app(app)?.pipeline.map { context.mirrorPath(repository: RepositoryURL.normalize($0.repository)) }
    }

    /// The long-running parts, in start order; the service group stops them in reverse.
    public var services: [any Service] {
        [
            // First, so that it stops last: its final try comes after the queue's last deployment has ended.
            UnsavedRecordsService(records: context.unsaved, store: context.store, logger: context.logger),
            // Before the queue, so that it marks the node stopped only once the queue has stopped.
            HeartbeatService(
                node: nodeName, startedAt: startedAt, store: context.store, events: context.events,
                logger: context.logger),
            queue,
            ReloadService(registry: registry, logger: context.logger) { [context, mirrors, registry] changed in
                await mirrors.follow(registry.pipelines)
                do {
                    let report = try await Recovery(context: context).adopt(changed)
                    for line in report.summary { context.logger.notice("\(line)") }
                } catch {
                    context.logger.error("cannot adopt the releases of reloaded apps: \(error)")
                }
            },
            PollService(registry: registry, intake: intake, logger: context.logger),
            NetworkCallsService(mirrors: mirrors),
        ]
    }

    /// Makes HTTPS remotes trust `file` beside the system's CAs: both, in one bundle under `<state>/tls/`, since
    /// libgit2's TLS takes one file (and a directory only of hashed names).
    private func trust(_ file: String) throws(DeployError) {
        let bundle = context.stateDirectory + "/tls/ca-bundle.pem"
        do {
            let own = try String(contentsOfFile: file, encoding: .utf8)
            let system = try LibGit2.systemCertificateBundle.map { try String(contentsOfFile: $0, encoding: .utf8) }
            try FileManager.default.createDirectory(
                atPath: context.stateDirectory + "/tls", withIntermediateDirectories: true)
            try ((system ?? "") + "\n" + own).write(toFile: bundle, atomically: true, encoding: .utf8)
        } catch {
            throw .invalid("cannot read the CA file \(file): \(error.localizedDescription)")
        }
        do {
            try LibGit2.setCertificateLocations(file: bundle)
        } catch {
            throw .invalid("the CA file \(file) cannot be used: \(error.message)")
        }
    }

    // MARK: - Engine: what there is to see

    public var appsGeneration: UInt64 {
        context.events.generation &+ registry.generation &+ context.processes.changes.value
    }

    public func apps() async throws(DeployError) -> [API.App] {
        let definitions = registry.all
        let store = context.store
        return try await DeployError.wrapping {
            async let latest = store.latestDeployments()
            async let outcomes = store.latestOutcomes()
            async let queued = store.queuedCounts()
            async let states = store.appStates()
            let (lastDeployments, lastOutcomes, queuedCounts, appStates) = try await (latest, outcomes, queued, states)
            let live = try await store.releases(ids: definitions.compactMap { appStates[$0.name]?.liveRelease })
            var result: [API.App] = []
            for definition in definitions {
                result.append(
                    summary(
                        definition, last: lastDeployments[definition.name], outcome: lastOutcomes[definition.name],
                        queued: queuedCounts[definition.name] ?? 0,
                        current: appStates[definition.name]?.liveRelease.flatMap { live[$0] },
                        processes: await context.processes.processes(app: definition.name)))
            }
            return result
        }
    }

    public func app(_ name: String) async throws(DeployError) -> API.App {
        guard let definition = registry.app(name) else { throw .unknownApp(name) }
        let store = context.store
        return try await DeployError.wrapping {
            let last = try await store.deployments(app: name, limit: 1, before: nil).first
            let outcome = try await store.latestOutcomes()[name]
            let queued = try await store.queuedCounts()[name] ?? 0
            let live = try await store.appState(name).liveRelease
            let current = try await live.asyncMap { try await store.release($0) } ?? nil
            return summary(
                definition, last: last, outcome: outcome, queued: queued, current: current,
                processes: await context.processes.processes(app: name))
        }
    }

    /// `status` tells the truth about the newest finished deployment: `failed` when it failed, including one that
    /// Slipway rolled back by itself (whose rollback succeeded), until a later deployment succeeds.
    private func summary(
        _ definition: AppDefinition, last: Deployment?, outcome: Deployment?, queued: Int, current: Release?,
        processes: [API.Process]
    ) -> API.App {
        let pipeline = definition.pipeline
        let status: AppStatus
        if definition.configError != nil {
            status = .configError
        } else if queued > 0 || last?.status == .running || last?.status == .queued {
            status = .deploying
        } else if outcome?.status == .failed || outcome?.status == .interrupted {
            status = .failed
        } else {
            status = .idle
        }
        let masker = SecretMasker(pipeline?.secrets ?? [])
        return API.App(
            name: definition.name, repository: pipeline?.shownRepository ?? "", branch: pipeline?.branch ?? "",
            deployTo: pipeline.map { context.layout(for: $0).deployTo } ?? "", status: status,
            current: current.map { API.Release($0, active: true) },
            lastDeployment: last.map { API.Deployment(mask($0, masker)) }, queued: queued,
            configError: definition.configError, processes: processes)
    }

    public func deployments(app: String, limit: Int, before: Int64?) async throws(DeployError) -> [API.Deployment] {
        guard let definition = registry.app(app) else { throw .unknownApp(app) }
        let masker = SecretMasker(definition.pipeline?.secrets ?? [])
        do {
            return try await context.store.deployments(app: app, limit: limit, before: before)
                .map { API.Deployment(mask($0, masker)) }
        } catch {
            throw .store(error)
        }
    }

    public func deployment(_ id: Int64) async throws(DeployError) -> API.Deployment {
        let store = context.store
        let found = try await DeployError.wrapping { () -> (Deployment, [StepRecord])? in
            guard let deployment = try await store.deployment(id) else { return nil }
            return (deployment, try await store.steps(deployment: id))
        }
        guard let (deployment, steps) = found else { throw .notFound("there is no deployment \(id)") }
        let masker = SecretMasker(registry.app(deployment.app)?.pipeline?.secrets ?? [])
        // A step is named after its command, which may hold a secret written out.
        let shownSteps = steps.map { step in
            var shown = step
            shown.name = masker.mask(step.name)
            return shown
        }
        return API.Deployment(mask(deployment, masker), steps: shownSteps)
    }

    public func releases(app: String) async throws(DeployError) -> [API.Release] {
        guard registry.app(app) != nil else { throw .unknownApp(app) }
        let store = context.store
        return try await DeployError.wrapping {
            let live = try await store.appState(app).liveRelease
            return try await store.releases(app: app).map { API.Release($0, active: $0.id == live) }
        }
    }

    public func nodes() async throws(DeployError) -> [API.Node] {
        let store = context.store
        return try await DeployError.wrapping {
            try await store.nodes(downAfter: HeartbeatService.downAfter).map { node in
                API.Node(
                    name: node.name, version: node.version, startedAt: node.startedAt, lastSeen: node.lastSeen,
                    status: node.up ? .up : .down)
            }
        }
    }

    public func log(deployment id: Int64) async throws(DeployError) -> LogChunks {
        _ = try await deployment(id)  // unknown ids are not found, not empty
        return LogChunks(path: context.logPath(deployment: id))
    }

    public func followLog(deployment id: Int64, after: Int) async throws(DeployError) -> LogFollow {
        _ = try await deployment(id)
        // Subscribe before the file is read, so that nothing written in between is lost.
        let live = context.events.subscribe(deployment: id)
        return LogFollow(
            path: context.logPath(deployment: id), after: after, live: live, deploymentID: id,
            detail: { [self] in try? await self.deployment(id) })
    }

    public func events() -> DeploymentEvents {
        DeploymentEvents(bus: context.events.subscribe(), mask: { [self] in API.Deployment(self.masked($0)) })
    }

    // MARK: - Engine: what can be asked

    public func deploy(app: String, ref: String?) async throws(DeployError) -> API.Deployment {
        API.Deployment(masked(try await intake.deploy(app: app, ref: ref)))
    }

    public func rollback(app: String, to target: RollbackTarget?) async throws(DeployError) -> API.Deployment {
        API.Deployment(masked(try await intake.rollback(app: app, to: target)))
    }

    public func cancel(_ id: Int64) async throws(DeployError) -> API.Deployment {
        API.Deployment(masked(try await queue.cancel(id)))
    }

    public func push(_ notice: PushNotice) async throws(DeployError) -> [API.Deployment] {
        try await intake.pushed(notice).map { API.Deployment(masked($0)) }
    }

    public func deliver(_ delivery: ForgeDelivery) async throws(DeployError) -> ForgeOutcome {
        try await intake.deliver(delivery)
    }

    /// `deployment` with its app's secrets masked, as everything that leaves the daemon is.
    func masked(_ deployment: Deployment) -> Deployment { registry.masked(deployment) }

    private func mask(_ deployment: Deployment, _ masker: SecretMasker) -> Deployment {
        AppRegistry.mask(deployment, masker)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

/// Stops the network calls that are not a deployment's as soon as the daemon is told to stop: a remote that says
/// nothing cannot hold a request, and with it the server's stop, for longer than the grace.
///
/// It listens for the signals itself rather than waiting for its turn in the service group's graceful shutdown:
/// the group stops the HTTP server first, and the server waits for the very requests these calls hold.
struct NetworkCallsService: Service {
    let mirrors: MirrorPool

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in signals.cancelOnGracefulShutdown() {
                    mirrors.stopOutsideCalls()
                    return
                }
            }
        }
        mirrors.stopOutsideCalls()
        // A service runs until the group shuts down.
        try? await gracefulShutdown()
    }
}

extension NetworkCallsService: CustomStringConvertible {
    var description: String { "NetworkCallsService" }
}
