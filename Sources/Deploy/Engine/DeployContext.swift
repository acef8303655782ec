import Foundation
import Logging
import Pipeline

/// What the parts of the daemon share: the store, the event bus, where state lives, how steps run.
struct DeployContext: Sendable {
    var store: any DeployStore
    var events: EventBus
    /// `<state>`: the store, the mirrors, the logs and the default deploy directories live here.
    var stateDirectory: String
    var runner: StepRunner
    /// The daemon's own environment: `PATH`, `HOME` and `LANG` pass through to steps.
    var daemonEnvironment: [String: String]
    var metrics: SlipwayMetrics
    var logger: Logger
    /// The apps' processes on this machine.
    var processes: ProcessSupervisor

    init(
        store: any DeployStore, events: EventBus = EventBus(), stateDirectory: String,
        runner: StepRunner = StepRunner(),
        daemonEnvironment: [String: String] = ProcessInfo.processInfo.environment,
        metrics: SlipwayMetrics = .discarding, logger: Logger = Logger(label: "slipway"),
        processes: ProcessSupervisor? = nil
    ) {
        self.store = store
        self.events = events
        self.stateDirectory = stateDirectory
        self.runner = runner
        self.daemonEnvironment = daemonEnvironment
        self.metrics = metrics
        self.logger = logger
        self.processes = processes ?? ProcessSupervisor(stateDirectory: stateDirectory, events: events, logger: logger)
    }

    /// `<deploy_to>` for an app: the pipeline's, or `<state>/apps/<app>`.
    func layout(for pipeline: Pipeline) -> ReleaseLayout {
        ReleaseLayout(deployTo: pipeline.deployTo ?? "\(stateDirectory)/apps/\(pipeline.app)")
    }

    func mirrorPath(app: String) -> String { "\(stateDirectory)/repos/\(app).git" }

    func logPath(deployment id: Int64) -> String { "\(stateDirectory)/logs/\(id).log" }
}

extension DeployContext: CustomStringConvertible {
    /// Never the environment: it holds the token and the webhook secrets, and ServiceLifecycle logs every service
    /// (and so every context a service holds) with `\(service)` at debug level.
    var description: String { "DeployContext(state: \(stateDirectory))" }
}

extension Logger {
    /// This logger with an app's name (and a deployment's id) as metadata on every line.
    func about(app: String, deployment: Int64? = nil) -> Logger {
        var logger = self
        logger[metadataKey: "app"] = "\(app)"
        if let deployment { logger[metadataKey: "deployment"] = "\(deployment)" }
        return logger
    }
}
