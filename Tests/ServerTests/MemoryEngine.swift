import Deploy
import Foundation
import Pipeline
import SlipwayAPI

/// A small `Engine` that holds its apps and deployments in memory: for testing what the HTTP layer does with the
/// engine's answers (routes, status codes, JSON, SSE framing, error mapping) without a daemon, a store or git.
final class MemoryEngine: Engine, @unchecked Sendable {
    // @unchecked: every mutable field is behind `state`.
    struct State {
        var apps: [String: AppSummary] = [:]
        var deployments: [Int64: DeploymentDetail] = [:]
        var releases: [String: [ReleaseSummary]] = [:]
        var logs: [Int64: [String]] = [:]
        var deliveries: [ForgeDelivery] = []
        var pushes: [PushNotice] = []
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
                state.apps[name] = AppSummary(
                    name: name, repository: "/srv/git/\(name).git", branch: "main", deployTo: "/srv/\(name)",
                    status: .idle, current: nil, lastDeployment: nil, queued: 0, configError: nil)
            }
        }
    }

    /// Makes `app` look as if `commit` had been deployed with `log` as its log; returns the deployment.
    @discardableResult
    func recordDeployment(app: String, status: DeploymentStatus, log: [String] = [], error: String? = nil) -> Deployment
    {
        state.withLock { state in
            var deployment = Deployment(
                id: state.nextID, app: app, trigger: .manual, ref: "main", commit: String(repeating: "c", count: 40),
                message: "a change", author: "Ada", status: status, phase: status == .succeeded ? .done : .build,
                createdAt: Date(timeIntervalSince1970: 1_795_600_800))
            deployment.error = error
            state.nextID += 1
            state.deployments[deployment.id] = DeploymentDetail(deployment: deployment, steps: [])
            state.logs[deployment.id] = log
            state.apps[app]?.lastDeployment = deployment
            state.generation += 1
            return deployment
        }
    }

    private func check() throws(DeployError) {
        if let failure = state.value.failure { throw failure }
    }

    private func known(_ app: String) throws(DeployError) -> AppSummary {
        try check()
        guard let summary = state.value.apps[app] else { throw .unknownApp(app) }
        return summary
    }

    var appsGeneration: UInt64 { state.value.generation }

    func apps() async throws(DeployError) -> [AppSummary] {
        try check()
        return state.value.apps.values.sorted { $0.name < $1.name }
    }

    func app(_ name: String) async throws(DeployError) -> AppSummary { try known(name) }

    func deployments(app: String, limit: Int, before: Int64?) async throws(DeployError) -> [Deployment] {
        _ = try known(app)
        return state.value.deployments.values.map(\.deployment)
            .filter { $0.app == app && $0.id < (before ?? .max) }.sorted { $0.id > $1.id }.prefix(limit).map { $0 }
    }

    func deployment(_ id: Int64) async throws(DeployError) -> DeploymentDetail {
        try check()
        guard let detail = state.value.deployments[id] else { throw .notFound("there is no deployment \(id)") }
        return detail
    }

    func releases(app: String) async throws(DeployError) -> [ReleaseSummary] {
        _ = try known(app)
        return state.value.releases[app] ?? []
    }

    func nodes() async throws(DeployError) -> [NodeSummary] {
        try check()
        let start = Date(timeIntervalSince1970: 1_795_600_800)
        return [
            NodeSummary(name: "memory", version: SlipwayVersion.current, startedAt: start, lastSeen: start, status: .up)
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
        let detail = try await deployment(id)
        let lines = state.value.logs[id] ?? []
        return LogFollow(
            AsyncStream { continuation in
                for (index, line) in lines.enumerated() where index + 1 > after {
                    continuation.yield(.line(number: index + 1, text: line))
                }
                continuation.yield(.end(detail))
                continuation.finish()
            })
    }

    /// Every recorded deployment once, then the end of the stream.
    func events() -> DeploymentEvents {
        let all = state.value.deployments.values.map(\.deployment).sorted { $0.id < $1.id }
        return DeploymentEvents(
            AsyncStream { continuation in
                for deployment in all { continuation.yield(deployment) }
                continuation.finish()
            })
    }

    func deploy(app: String, ref: String?) async throws(DeployError) -> Deployment {
        _ = try known(app)
        return recordDeployment(app: app, status: .queued)
    }

    func rollback(app: String, to target: RollbackTarget?) async throws(DeployError) -> Deployment {
        _ = try known(app)
        guard target != nil else { throw .conflict("\(app) has no live release to roll back from") }
        return recordDeployment(app: app, status: .queued)
    }

    func cancel(_ id: Int64) async throws(DeployError) -> Deployment {
        var detail = try await deployment(id)
        guard !detail.deployment.status.isFinished else {
            throw .conflict("deployment \(id) has already finished (\(detail.deployment.status.rawValue))")
        }
        detail.deployment.status = .cancelled
        state.withLock { $0.deployments[id] = detail }
        return detail.deployment
    }

    func push(_ notice: PushNotice) async throws(DeployError) -> [Deployment] {
        _ = try known(notice.app)
        state.withLock { $0.pushes.append(notice) }
        return [recordDeployment(app: notice.app, status: .queued)]
    }

    func deliver(_ delivery: ForgeDelivery) async throws(DeployError) -> ForgeOutcome {
        try check()
        state.withLock { $0.deliveries.append(delivery) }
        return forgeOutcome
    }
}
