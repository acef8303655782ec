import ArgumentParser
import Deploy
import Foundation
import Hummingbird
import Logging
import Prometheus
import Server
import SlipwayAPI
import TestSupport

/// `GET /api/v1/apps` with many apps and a long history, against a bare Hummingbird route in the same server, both
/// driven by wrk on loopback in alternating rounds.
struct APICase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "The status API against a bare Hummingbird route in the same binary (wrk on loopback).")

    @Option(help: "Apps (pipeline files).") var apps = 100
    @Option(help: "Deployments in the store, spread over the apps.") var deployments = 10_000
    @Option(help: "Seconds per wrk run.") var duration = 5
    @Option(help: "wrk connections.") var connections = 32
    @Option(help: "wrk threads.") var threads = 2
    @Option(help: "Rounds of each route, alternating; medians are reported.") var rounds = 3
    @Option(help: "A PostgreSQL URL for the store (an empty database); the embedded SQLite store by default.")
    var store: String?

    func run() async throws {
        let scratch = ScratchDirectory("slipway-bench-api")
        let origin = scratch("origin.git")
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", origin])
        for index in 0..<apps {
            try writeFile(scratch("pipelines/app\(index).yml"), "repository: \(origin)\nbuild:\n  - make\n")
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let registry = PrometheusCollectorRegistry()
        let store: any DeployStore
        if let url = self.store {
            guard let location = try PostgresLocation(url: url) else {
                throw BenchFailure("--store: '\(url)' is not a postgres:// URL")
            }
            store = try await PostgresStore.open(location, logger: logger)
        } else {
            store = try SQLiteStore(path: scratch("state/slipway.sqlite"))
        }
        let daemon = Daemon(
            configuration: DaemonConfiguration(
                pipelinesDirectory: scratch("pipelines"), stateDirectory: scratch("state")),
            store: store, metrics: SlipwayMetrics(factory: PrometheusMetricsFactory(registry: registry)), logger: logger
        )
        // Recovery first: it would take the seeded live releases, which have no directories on disk, back out.
        try await daemon.prepare()
        try await seed(store)

        let router = buildRouter(engine: daemon, configuration: ServerConfiguration(), registry: registry)
        router.get("/bare") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}")))
        }
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        try await runBeside([application], logger: logger) {
            var iterator = portStream.makeAsyncIterator()
            guard let port = await iterator.next() else { throw BenchFailure("the server did not start") }
            try await measure(port: port)
        }
    }

    private func measure(port: Int) async throws {
        let size = try await URLSessionless.get(port: port, path: "/api/v1/apps").count
        var ours: [Double] = []
        var bare: [Double] = []
        for round in 1...rounds {
            ours.append(try wrk(port: port, path: "/api/v1/apps"))
            bare.append(try wrk(port: port, path: "/bare"))
            print("round \(round): /api/v1/apps \(Int(ours.last!)) req/s, bare route \(Int(bare.last!)) req/s")
        }
        let apiRate = median(ours)
        let bareRate = median(bare)
        report(
            "api",
            [
                "apps": apps, "deployments": deployments, "body_bytes": size, "slipway_rps": apiRate,
                "store": store == nil ? "sqlite" : "postgres",
                "bare_rps": bareRate,
                "ratio": apiRate / bareRate, "goal": 0.5,
            ])
    }

    /// A history of succeeded deployments, each app's newest one live.
    func seed(_ store: some DeployStore) async throws {
        var batch: [Deployment] = []
        let start = Date().addingTimeInterval(-Double(deployments) * 60)
        for index in 0..<deployments {
            var deployment = Deployment(
                id: 0, app: "app\(index % apps)", trigger: .push, ref: "refs/heads/main",
                commit: String(format: "%040x", index + 1), message: "Change number \(index) to the service",
                author: "Ada Lovelace", status: .succeeded, phase: .done,
                createdAt: start.addingTimeInterval(Double(index) * 60))
            deployment.startedAt = deployment.createdAt
            deployment.finishedAt = deployment.createdAt.addingTimeInterval(12)
            deployment.durationMs = 12_000
            batch.append(deployment)
        }
        // In parts: each part is one transaction, and on PostgreSQL one round trip per row, within the store's
        // 10 s deadline.
        var imported: [Deployment] = []
        for part in stride(from: 0, to: batch.count, by: 500) {
            imported += try await store.importHistory(Array(batch[part..<min(part + 500, batch.count)]))
        }
        let newest = Dictionary(imported.map { ($0.app, $0) }, uniquingKeysWith: { $0.id > $1.id ? $0 : $1 })
        for (app, deployment) in newest {
            try await store.save(
                Release(
                    id: deployment.id, app: app, commit: deployment.commit, message: deployment.message,
                    author: deployment.author, createdAt: deployment.finishedAt ?? deployment.createdAt,
                    succeeded: true))
            try await store.updateAppState(app) { [id = deployment.id] in $0.liveRelease = id }
        }
    }

    func wrk(port: Int, path: String) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = ["-t\(threads)", "-c\(connections)", "-d\(duration)s", "http://127.0.0.1:\(port)\(path)"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
            let rate = Double(line.split(separator: " ").last ?? "")
        else { throw BenchFailure("cannot read wrk's output:\n\(text)") }
        if text.contains("Non-2xx") { throw BenchFailure("wrk saw errors:\n\(text)") }
        return rate
    }
}

/// A plain HTTP/1.1 GET over a socket: enough to check a response's size without another dependency.
enum URLSessionless {
    static func get(port: Int, path: String) async throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw BenchFailure("cannot connect to port \(port)") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        guard let end = response.firstRange(of: Array("\r\n\r\n".utf8)) else { return [] }
        return Array(response[end.upperBound...])
    }
}
