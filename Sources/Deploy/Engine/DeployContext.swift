import Foundation
import GitKit
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
    /// The final records of deployments that the store could not write when they ended, until it can.
    var unsaved = UnsavedRecords()
    /// This daemon's `--node` name: the owner of its deployments' leases, and `SLIPWAY_NODE` in their steps.
    var node: String

    init(
        store: any DeployStore, events: EventBus = EventBus(), stateDirectory: String,
        runner: StepRunner = StepRunner(),
        daemonEnvironment: [String: String] = ProcessInfo.processInfo.environment,
        metrics: SlipwayMetrics = .discarding, logger: Logger = Logger(label: "slipway"),
        processes: ProcessSupervisor? = nil, node: String = ProcessInfo.processInfo.hostName
    ) {
        self.store = store
        self.events = events
        self.stateDirectory = stateDirectory
        self.runner = runner
        self.daemonEnvironment = daemonEnvironment
        self.metrics = metrics
        self.logger = logger
        self.processes = processes ?? ProcessSupervisor(stateDirectory: stateDirectory, events: events, logger: logger)
        self.node = node
    }

    /// `<deploy_to>` for an app: the pipeline's, or `<state>/apps/<app>`.
    func layout(for pipeline: Pipeline) -> ReleaseLayout {
        ReleaseLayout(deployTo: pipeline.deployTo ?? "\(stateDirectory)/apps/\(pipeline.app)")
    }

    /// `<state>/repos/<name>-<hash>.git`, the mirror of a repository URL normalized as webhooks compare them: the
    /// last part of its path (for a reader of the folder) and the start of its hash (to tell apart two repositories
    /// of that name).
    func mirrorPath(repository key: String) -> String {
        let last = key.split { $0 == "/" || $0 == ":" }.last ?? ""
        var name = String(String.UnicodeScalarView(last.unicodeScalars.filter(Self.isPlainNameScalar).prefix(40)))
        if name.isEmpty || name.hasPrefix(".") { name = "repository" }
        return "\(stateDirectory)/repos/\(name)-\(OID(blobOf: key).hex.prefix(12)).git"
    }

    /// An ASCII letter or digit, `.`, `_` or `-`: what a folder name can hold without quoting in any shell.
    private static func isPlainNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            || scalar == "." || scalar == "_" || scalar == "-"
    }

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
