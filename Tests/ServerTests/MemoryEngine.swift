import Deploy
import Foundation
import Pipeline
import SlipwayAPI

/// A small `Engine` that holds its apps and deployments in memory: for testing what the HTTP layer does with the
/// engine's answers (routes, status codes, JSON, SSE framing, error mapping) without a daemon, a store or git.
final class MemoryEngine: Engine, @unchecked Sendable {
    // @unchecked: every mutable field is behind `state`.
    struct State {
        var apps: [String: API.App] = [:]
        var deployments: [Int64: API.Deployment] = [:]
        var releases: [String: [API.Release]] = [:]
        var logs: [Int64: [String]] = [:]
        var deliveries: [ForgeDelivery] = []
        var pushes: [PushNotice] = []
        var processes: [String: [API.Process]] = [:]
        var processLogs: [String: [String]] = [:]
        var restarts: [(app: String, process: String?)] = []
        /// What `processEvents()` sends, before it waits for more that never come.
        var processEvents: [API.ProcessEvent] = []
        var nextID: Int64 = 1
        /// Thrown by every method when set, to check how each error reaches a client.
        var failure: DeployError?
        var generation: UInt64 = 0
    }

    let state = Locked(State())
    let forgeOutcome: ForgeOutcome

    init(apps: [String] = ["hello"], forgeOutcome: ForgeOutcome = .ignored) {
        self.forgeOutcome = forgeOutcome
        state.withLock { state in
            for name in apps {
                state.apps[name] = API.App(
                    name: name, repository: "/srv/git/\(name).git", branch: "main", deployTo: "/srv/\(name)",
                    status: .idle, current: nil, lastDeployment: nil, queued: 0, configError: nil)
            }
        }
    }

    /// Makes `app` look as if a deployment had reached `status`, with `log` as its log; returns the deployment.
    @discardableResult
    func recordDeployment(
        app: String, status: DeploymentStatus, log: [String] = [], error: String? = nil
    )
        -> API.Deployment
    {
        state.withLock { state in
            var deployment = API.Deployment(
                id: state.nextID, app: app, kind: .deploy, trigger: .manual, ref: "main",
                commit: String(repeating: "c", count: 40), message: "a change", author: "Ada", status: status,
                phase: status == .succeeded ? .done : .build, createdAt: Date(timeIntervalSince1970: 1_795_600_800),
                startedAt: nil, finishedAt: nil, durationMs: nil, supersededBy: nil, rolledBackTo: nil, error: error)
            state.nextID += 1
            state.apps[app]?.lastDeployment = deployment
            deployment.steps = []
            state.deployments[deployment.id] = deployment
            state.logs[deployment.id] = log
            state.generation += 1
            return deployment
        }
    }

    private func check() throws(DeployError) {
        if let failure = state.value.failure { throw failure }
    }

    private func known(_ app: String) throws(DeployError) -> API.App {
        try check()
        guard let summary = state.value.apps[app] else { throw .unknownApp(app) }
        return summary
    }

    var appsGeneration: UInt64 { state.value.generation }

    func apps() async throws(DeployError) -> [API.App] {
        try check()
        return state.value.apps.values.sorted { $0.name < $1.name }
    }

    func app(_ name: String) async throws(DeployError) -> API.App { try known(name) }

    func deployments(app: String, limit: Int, before: Int64?) async throws(DeployError) -> [API.Deployment] {
        _ = try known(app)
        return state.value.deployments.values.map { $0 }
            .filter { $0.app == app && $0.id < (before ?? .max) }.sorted { $0.id > $1.id }.prefix(limit).map { $0 }
    }

    func deployment(_ id: Int64) async throws(DeployError) -> API.Deployment {
        try check()
        guard let deployment = state.value.deployments[id] else { throw .notFound("there is no deployment \(id)") }
        return deployment
    }

    func releases(app: String) async throws(DeployError) -> [API.Release] {
        _ = try known(app)
        return state.value.releases[app] ?? []
    }

    func nodes() async throws(DeployError) -> [API.Node] {
        try check()
        let start = Date(timeIntervalSince1970: 1_795_600_800)
        return [
            API.Node(name: "memory", version: SlipwayVersion.current, startedAt: start, lastSeen: start, status: .up)
        ]
    }

    func log(deployment id: Int64) async throws(DeployError) -> LogChunks {
        _ = try await deployment(id)
        let text = (state.value.logs[id] ?? []).map { $0 + "\n" }.joined()
        return LogChunks(
            AsyncStream { continuation in
                continuation.yield(Array(text.utf8))
                continuation.finish()
            })
    }

    /// The recorded lines after `after`, then the end: the deployment as recorded.
    func followLog(deployment id: Int64, after: Int) async throws(DeployError) -> LogFollow {
        let final = try await deployment(id)
        let lines = state.value.logs[id] ?? []
        return LogFollow(
            AsyncStream { continuation in
                for (index, line) in lines.enumerated() where index + 1 > after {
                    continuation.yield(.line(number: index + 1, text: line))
                }
                continuation.yield(.end(final))
                continuation.finish()
            })
    }

    /// Every recorded deployment once, then the end of the stream.
    func events() -> DeploymentEvents {
        let all = state.value.deployments.values.sorted { $0.id < $1.id }.map { deployment in
            var listed = deployment
            listed.steps = nil
            return listed
        }
        return DeploymentEvents(
            AsyncStream { continuation in
                for deployment in all { continuation.yield(deployment) }
                continuation.finish()
            })
    }

    func deploy(app: String, ref: String?) async throws(DeployError) -> API.Deployment {
        _ = try known(app)
        return recordDeployment(app: app, status: .queued)
    }

    func rollback(app: String, to target: RollbackTarget?) async throws(DeployError) -> API.Deployment {
        _ = try known(app)
        guard target != nil else { throw .conflict("\(app) has no live release to roll back from") }
        return recordDeployment(app: app, status: .queued)
    }

    func cancel(_ id: Int64) async throws(DeployError) -> API.Deployment {
        var deployment = try await deployment(id)
        guard !deployment.status.isFinished else {
            throw .conflict("deployment \(id) has already finished (\(deployment.status.rawValue))")
        }
        deployment.status = .cancelled
        state.withLock { [deployment] in $0.deployments[id] = deployment }
        deployment.steps = nil
        return deployment
    }

    func push(_ notice: PushNotice) async throws(DeployError) -> [API.Deployment] {
        _ = try known(notice.app)
        state.withLock { $0.pushes.append(notice) }
        return [recordDeployment(app: notice.app, status: .queued)]
    }

    func deliver(_ delivery: ForgeDelivery) async throws(DeployError) -> ForgeOutcome {
        try check()
        state.withLock { $0.deliveries.append(delivery) }
        return forgeOutcome
    }

    func processes(app: String) async throws(DeployError) -> [API.Process] {
        try check()
        let (known, processes) = state.withLock { ($0.apps[app] != nil, $0.processes[app] ?? []) }
        guard known else { throw .unknownApp(app) }
        return processes
    }

    func processLog(app: String, process: String) async throws(DeployError) -> LogChunks {
        let lines = try processLines(app: app, process: process)
        let (chunks, continuation) = AsyncStream<[UInt8]>.makeStream()
        for line in lines { continuation.yield(Array((line + "\n").utf8)) }
        continuation.finish()
        return LogChunks(chunks)
    }

    func followProcessLog(
        app: String, process: String, lines: Int
    ) async throws(DeployError)
        -> AsyncStream<String>
    {
        let all = try processLines(app: app, process: process)
        let (stream, continuation) = AsyncStream<String>.makeStream()
        for line in all.suffix(lines) { continuation.yield(line) }
        continuation.finish()
        return stream
    }

    func processEvents() -> AsyncStream<API.ProcessEvent> {
        let changes = state.withLock { $0.processEvents }
        let (stream, continuation) = AsyncStream<API.ProcessEvent>.makeStream()
        for change in changes { continuation.yield(change) }
        return stream
    }

    func restart(app: String, process: String?) async throws(DeployError) -> [API.Process] {
        try check()
        let (known, processes) = state.withLock { state in
            guard state.apps[app] != nil else { return (false, [API.Process]()) }
            state.restarts.append((app, process))
            return (true, state.processes[app] ?? [])
        }
        guard known else { throw .unknownApp(app) }
        return processes
    }

    private func processLines(app: String, process: String) throws(DeployError) -> [String] {
        try check()
        let (known, lines) = state.withLock { ($0.apps[app] != nil, $0.processLogs["\(app)/\(process)"]) }
        guard known else { throw .unknownApp(app) }
        guard let lines else { throw .notFound("\(app) has no process '\(process)'") }
        return lines
    }
}
