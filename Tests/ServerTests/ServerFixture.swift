import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Pipeline
import Prometheus
import Server
import SlipwayAPI
import TestSupport

@testable import Deploy

/// A real daemon over real repositories in a temporary directory, with its queue running and its router ready for
/// in-memory requests.
final class ServerFixture: @unchecked Sendable {
    // @unchecked: one test uses it at a time; what it hands out is Sendable.
    let apps: AppsOnOrigin
    let daemon: Daemon
    let registry = PrometheusCollectorRegistry()
    var configuration: ServerConfiguration
    private let queueTask: Task<Void, Error>

    var scratch: ScratchDirectory { apps.scratch }
    var work: WorkingRepository { apps.work }
    var origin: String { apps.origin }
    var pipelines: String { apps.pipelines }

    init(
        apps pipelines: [String: String] = ["hello": ""], configuration: ServerConfiguration = ServerConfiguration(),
        webhookSecret: String? = nil, environment: [String: String] = [:]
    ) async throws {
        apps = try AppsOnOrigin("slipway-server", apps: pipelines)
        self.configuration = configuration
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        daemon = try Daemon(
            configuration: DaemonConfiguration(
                pipelinesDirectory: apps.pipelines, stateDirectory: apps.state, webhookSecret: webhookSecret,
                environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": apps.scratch.path].merging(environment) {
                    $1
                }),
            metrics: SlipwayMetrics(factory: PrometheusMetricsFactory(registry: registry)), logger: logger)
        try await daemon.prepare()
        let queue = daemon.queue
        queueTask = Task { try await queue.run() }
    }

    deinit {
        queueTask.cancel()
    }

    var router: Router<BasicRequestContext> {
        buildRouter(engine: daemon, configuration: configuration, registry: registry, keepAliveInterval: .seconds(1))
    }

    func test(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await Application(router: router).test(.router, body)
    }

    @discardableResult
    func push(_ message: String, files: [String: String] = ["a.txt": UUID().uuidString]) throws -> String {
        try apps.push(message, files: files)
    }

    /// Waits until the deployment has finished and returns it, by its event: everything that follows events (the
    /// cached app list) has seen the change by then.
    func finished(_ id: Int64) async throws -> API.Deployment {
        try await waitForFinish(id, engine: daemon)
    }
}

extension TestResponse {
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]) ?? [:]
    }
    var text: String { String(buffer: body) }
}

func jsonBody(_ object: Any) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
}

extension Dictionary where Key == String, Value == Any {
    subscript(path path: String) -> Any? {
        var value: Any? = self
        for key in path.split(separator: ".") {
            value = (value as? [String: Any])?[String(key)]
        }
        return value
    }
}
