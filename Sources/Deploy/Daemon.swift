import Foundation
import GitKit
import Logging
import Pipeline
import ServiceLifecycle

/// What `slipway serve` is configured with.
public struct DaemonConfiguration: Sendable {
    public var pipelinesDirectory: String
    public var stateDirectory: String
    public var jobs: Int
    public var shutdownGrace: Duration
    public var credentials: Credentials
    public var environment: [String: String]

    public init(
        pipelinesDirectory: String, stateDirectory: String, jobs: Int = 2, shutdownGrace: Duration = .seconds(30),
        credentials: Credentials = .none, environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.pipelinesDirectory = pipelinesDirectory
        self.stateDirectory = stateDirectory
        self.jobs = jobs
        self.shutdownGrace = shutdownGrace
        self.credentials = credentials
        self.environment = environment
    }
}

/// The status of an app, as the API shows it.
public enum AppStatus: String, Sendable, Codable {
    case idle, deploying, failed
    case configError = "config_error"
}

/// One app as the API shows it.
public struct AppSummary: Sendable {
    public var name: String
    public var repository: String
    public var branch: String
    public var deployTo: String
    public var status: AppStatus
    public var current: Release?
    public var lastDeployment: Deployment?
    public var queued: Int
    public var configError: String?
}

/// The daemon's core, wired together: the store, the pipelines, the mirrors, the queue and the watchers. The HTTP
/// server and the command line talk to it and to nothing below it.
public final class Daemon: Sendable {
    public let context: DeployContext
    public let registry: AppRegistry
    public let mirrors: Mirrors
    public let queue: DeployQueue
    public let watcher: Watcher

    public init(configuration: DaemonConfiguration, metrics: SlipwayMetrics = .discarding, logger: Logger) throws {
        let state = URL(fileURLWithPath: configuration.stateDirectory).standardizedFileURL.path
        let store = try Store(path: state + "/slipway.sqlite")
        context = DeployContext(
            store: store, stateDirectory: state, daemonEnvironment: configuration.environment, metrics: metrics,
            logger: logger)
        registry = AppRegistry(
            directory: configuration.pipelinesDirectory, loader: PipelineLoader(environment: configuration.environment),
            logger: logger)
        mirrors = Mirrors(context: context, credentials: configuration.credentials)
        queue = DeployQueue(
            context: context, registry: registry, mirrors: mirrors, jobs: configuration.jobs,
            shutdownGrace: configuration.shutdownGrace)
        watcher = Watcher(context: context, registry: registry, mirrors: mirrors, queue: queue)
    }

    /// Loads the pipelines and brings the store and the disk into agreement. Call once, before serving.
    @discardableResult
    public func prepare() async throws -> RecoveryReport {
        try LibGit2.checkVersion()
        await registry.reload(force: true)
        let report = try await Recovery(context: context).run(pipelines: registry.pipelines)
        if !report.isClean { context.logger.notice("recovered after an unclean stop: \(report)") }
        try await context.store.pruneDeliveries(olderThan: 7 * 24 * 3600)
        return report
    }

    /// The long-running parts, in start order; the service group stops them in reverse.
    public var services: [any Service] {
        [
            queue,
            ReloadService(registry: registry, logger: context.logger),
            PollService(registry: registry, watcher: watcher, logger: context.logger),
        ]
    }

    // MARK: - Queries for the API

    /// Changes whenever anything `appSummaries()` shows may have changed: a deployment's status or phase (which
    /// covers queueing, superseding, switching and finishing) or a pipeline file.
    public var summaryGeneration: UInt64 { context.events.generation &+ registry.generation }

    public func appSummaries() async throws -> [AppSummary] {
        let definitions = registry.all
        async let latest = context.store.latestDeployments()
        async let queued = context.store.queuedCounts()
        async let states = context.store.appStates()
        let (lastDeployments, queuedCounts, appStates) = try await (latest, queued, states)
        let liveIDs = definitions.compactMap { appStates[$0.name]?.liveRelease }
        let live = try await context.store.releases(ids: liveIDs)
        return definitions.map { definition in
            summary(
                definition, last: lastDeployments[definition.name], queued: queuedCounts[definition.name] ?? 0,
                current: appStates[definition.name]?.liveRelease.flatMap { live[$0] })
        }
    }

    public func appSummary(_ name: String) async throws -> AppSummary {
        guard let definition = registry.app(name) else { throw DeployError.unknownApp(name) }
        let last = try await context.store.deployments(app: name, limit: 1).first
        let queued = try await context.store.queuedCounts()[name] ?? 0
        let live = try await context.store.appState(name).liveRelease
        let current = try await live.asyncMap { try await context.store.release($0) } ?? nil
        return summary(definition, last: last, queued: queued, current: current)
    }

    private func summary(_ definition: AppDefinition, last: Deployment?, queued: Int, current: Release?) -> AppSummary {
        let pipeline = definition.pipeline
        let status: AppStatus
        if definition.configError != nil {
            status = .configError
        } else if queued > 0 || last?.status == .running || last?.status == .queued {
            status = .deploying
        } else if last?.status == .failed || last?.status == .interrupted {
            status = .failed
        } else {
            status = .idle
        }
        let masker = SecretMasker(pipeline?.secrets ?? [])
        return AppSummary(
            name: definition.name, repository: pipeline?.shownRepository ?? "", branch: pipeline?.branch ?? "",
            deployTo: pipeline.map { context.layout(for: $0).deployTo } ?? "", status: status, current: current,
            lastDeployment: last.map { mask($0, masker) }, queued: queued, configError: definition.configError)
    }

    public func deployments(app: String, limit: Int, before: Int64?) async throws -> [Deployment] {
        guard let definition = registry.app(app) else { throw DeployError.unknownApp(app) }
        let masker = SecretMasker(definition.pipeline?.secrets ?? [])
        return try await context.store.deployments(app: app, limit: limit, before: before).map { mask($0, masker) }
    }

    public func deployment(_ id: Int64) async throws -> (Deployment, [StepRecord]) {
        guard let deployment = try await context.store.deployment(id) else {
            throw DeployError.notFound("there is no deployment \(id)")
        }
        return (masked(deployment), try await context.store.steps(deployment: id))
    }

    /// `deployment` as the API shows it: its app's secrets in the error read `***`. Everything that leaves the
    /// daemon goes through this or the listings, which mask the same way; the events stream included.
    public func masked(_ deployment: Deployment) -> Deployment {
        mask(deployment, SecretMasker(registry.app(deployment.app)?.pipeline?.secrets ?? []))
    }

    /// The kept releases of an app, newest first, and which one is live.
    public func releases(app: String) async throws -> (releases: [Release], live: Int64?) {
        guard registry.app(app) != nil else { throw DeployError.unknownApp(app) }
        let releases = try await context.store.releases(app: app)
        return (releases, try await context.store.appState(app).liveRelease)
    }

    public func logPath(deployment id: Int64) -> String { context.logPath(deployment: id) }

    private func mask(_ deployment: Deployment, _ masker: SecretMasker) -> Deployment {
        guard !masker.isEmpty, let error = deployment.error else { return deployment }
        var copy = deployment
        copy.error = masker.mask(error)
        return copy
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
