import Foundation
import Logging
import Pipeline

/// What deployments need from the daemon around them.
public struct DeployContext: Sendable {
    public var store: Store
    public var events: EventBus
    /// `<state>`: the store, the mirrors, the logs and the default deploy directories live here.
    public var stateDirectory: String
    public var runner: StepRunner
    /// The daemon's own environment: `PATH`, `HOME` and `LANG` pass through to steps.
    public var daemonEnvironment: [String: String]
    public var metrics: SlipwayMetrics
    public var logger: Logger

    public init(
        store: Store, events: EventBus = EventBus(), stateDirectory: String, runner: StepRunner = StepRunner(),
        daemonEnvironment: [String: String] = ProcessInfo.processInfo.environment,
        metrics: SlipwayMetrics = .discarding, logger: Logger = Logger(label: "slipway")
    ) {
        self.store = store
        self.events = events
        self.stateDirectory = stateDirectory
        self.runner = runner
        self.daemonEnvironment = daemonEnvironment
        self.metrics = metrics
        self.logger = logger
    }

    /// `<deploy_to>` for an app: the pipeline's, or `<state>/apps/<app>`.
    public func layout(for pipeline: Pipeline) -> ReleaseLayout {
        ReleaseLayout(deployTo: pipeline.deployTo ?? "\(stateDirectory)/apps/\(pipeline.app)")
    }

    public func mirrorPath(app: String) -> String { "\(stateDirectory)/repos/\(app).git" }

    public func logPath(deployment id: Int64) -> String { "\(stateDirectory)/logs/\(id).log" }

    /// Fetches an app's mirror and records how long it took (`slipway_fetch_duration_seconds`). Every fetch the
    /// daemon makes goes through here; callers say in their own words what a failure means.
    func fetch(_ mirror: Mirror, app: String) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        try await mirror.fetch()
        metrics.fetched(app: app, duration: clock.now - start)
    }
}

extension DeployContext: CustomStringConvertible {
    /// Never the environment: it holds the token and the webhook secrets, and ServiceLifecycle logs every service
    /// (and so every context a service holds) with `\(service)` at debug level.
    public var description: String { "DeployContext(state: \(stateDirectory))" }
}
