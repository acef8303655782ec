import Deploy
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Pipeline
import Prometheus
import Server
import TestSupport

/// A daemon over real repositories in a temporary directory, with its router ready for in-memory requests.
final class ServerFixture: @unchecked Sendable {
    // @unchecked: one test uses it at a time; what it hands out is Sendable.
    let scratch = ScratchDirectory("slipway-server")
    let work: WorkingRepository
    let daemon: Daemon
    let registry = PrometheusCollectorRegistry()
    var configuration: ServerConfiguration

    var origin: String { scratch("origin.git") }
    var pipelines: String { scratch("pipelines") }

    /// `apps` maps app names to their pipeline files without the `repository:` line, which points at the origin.
    init(
        apps: [String: String] = ["hello": ""], configuration: ServerConfiguration = ServerConfiguration(),
        environment: [String: String] = [:]
    ) async throws {
        work = try WorkingRepository(at: scratch("work"))
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", scratch("origin.git")])
        try work.git("remote", "add", "origin", scratch("origin.git"))
        for (name, yaml) in apps {
            try writeFile(scratch("pipelines/\(name).yml"), "repository: \(scratch("origin.git"))\ndeploy_to: \(scratch("deploy/\(name)"))\n" + yaml)
        }
        try FileManager.default.createDirectory(atPath: scratch("pipelines"), withIntermediateDirectories: true)
        self.configuration = configuration
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        daemon = try Daemon(
            configuration: DaemonConfiguration(
                pipelinesDirectory: scratch("pipelines"), stateDirectory: scratch("state"),
                environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": scratch.path].merging(environment) { $1 }),
            metrics: SlipwayMetrics(factory: PrometheusMetricsFactory(registry: registry)), logger: logger)
        try await daemon.prepare()
    }

    var router: Router<BasicRequestContext> {
        buildRouter(daemon: daemon, configuration: configuration, registry: registry, keepAliveInterval: .seconds(1))
    }

    func test(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await Application(router: router).test(.router, body)
    }

    /// Commits and pushes to the origin; returns the sha.
    @discardableResult
    func push(_ message: String, files: [String: String] = ["a.txt": UUID().uuidString]) throws -> String {
        let sha = try work.commit(message, files: files)
        try work.git("push", "-q", "--force", "origin", "HEAD:main")
        return sha
    }

    /// Waits until the deployment has finished and returns it. It waits for the event, not just the stored row, so
    /// that everything that follows events (the cached app list) has seen the change too.
    func finished(_ id: Int64) async throws -> Deployment {
        let events = daemon.context.events.subscribe(deployment: id)
        if let deployment = try await daemon.context.store.deployment(id), deployment.status.isFinished {
            return deployment
        }
        let waiter = Task { () -> Deployment? in
            for await event in events {
                if case .deployment(let deployment) = event, deployment.status.isFinished { return deployment }
            }
            return nil
        }
        let timeout = Task {
            try await Task.sleep(for: .seconds(60))
            waiter.cancel()
        }
        defer { timeout.cancel() }
        guard let deployment = await waiter.value else { throw TestFailure("deployment \(id) did not finish") }
        return deployment
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
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
