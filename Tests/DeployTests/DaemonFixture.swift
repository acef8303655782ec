import Foundation
import Logging
import Prometheus
import SlipwayAPI
import TestSupport

@testable import Deploy

/// A daemon over real repositories in a temporary directory, with its queue running, for tests of what lies behind
/// the engine's door: the intake, the queue, polling.
final class DaemonFixture: @unchecked Sendable {
    // @unchecked: one test uses it at a time; what it hands out is Sendable.
    let apps: AppsOnOrigin
    let daemon: Daemon
    let registry = PrometheusCollectorRegistry()
    private let queueTask: Task<Void, Error>

    var store: any DeployStore { daemon.context.store }
    var intake: Intake { daemon.intake }
    var work: WorkingRepository { apps.work }

    init(apps pipelines: [String: String] = ["hello": ""]) async throws {
        apps = try AppsOnOrigin("slipway-daemon", apps: pipelines)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        daemon = try Daemon(
            configuration: DaemonConfiguration(
                pipelinesDirectory: apps.pipelines, stateDirectory: apps.state,
                environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": apps.scratch.path]),
            metrics: SlipwayMetrics(factory: PrometheusMetricsFactory(registry: registry)), logger: logger)
        try await daemon.prepare()
        let queue = daemon.queue
        queueTask = Task { try await queue.run() }
    }

    deinit {
        queueTask.cancel()
    }

    @discardableResult
    func push(_ message: String, files: [String: String] = ["a.txt": UUID().uuidString]) throws -> String {
        try apps.push(message, files: files)
    }

    func pushed(
        _ app: String = "hello", ref: String = "refs/heads/main", after sha: String
    ) async throws
        -> [Deployment]
    {
        try await intake.pushed(PushNotice(app: app, ref: ref, after: sha))
    }

    /// Waits until the deployment has finished and returns it, by its event.
    func finished(_ id: Int64) async throws -> API.Deployment {
        try await waitForFinish(id, engine: daemon)
    }

    /// Waits until `id` has left the queue.
    func started(_ id: Int64) async throws {
        try await waitForStart(id, engine: daemon)
    }
}
