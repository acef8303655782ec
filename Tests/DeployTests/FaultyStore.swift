import Foundation
import Pipeline
import SlipwayAPI

@testable import Deploy

/// A store that forwards to a real one, except that the writes a test names fail as on a full state disk.
final class FaultyStore: DeployStore {
    enum Write: Hashable, Sendable {
        /// `saveStep` fails every write of a step; `updateStep` only the changes after the steps were recorded.
        /// `saveSucceededRelease` fails only the write that marks a release succeeded, after its health check.
        case insert, insertRollback, saveDeployment, saveSwitchingDeployment, saveStep, updateStep, saveRelease
        case saveSucceededRelease, updateAppState
    }

    let base: any DeployStore
    private let failing = Locked<Set<Write>>([])

    init(_ base: any DeployStore) {
        self.base = base
    }

    /// From now on, the writes in `writes` fail with `StoreError.full`; an empty set ends the fault.
    func fail(_ writes: Set<Write>) {
        failing.withLock { $0 = writes }
    }

    private let leasesLost = Locked(false)

    /// From now on, every lease is lost, as when another node took it over: neither held nor renewed.
    func loseLeases() {
        leasesLost.withLock { $0 = true }
    }

    private func check(_ write: Write) throws(StoreError) {
        if failing.withLock({ $0.contains(write) }) { throw .full }
    }

    func enqueue(
        _ request: DeploymentRequest, sparing: Int64?
    ) async throws(StoreError) -> (
        deployment: Deployment, superseded: [Deployment]
    ) {
        try check(.insert)
        return try await base.enqueue(request, sparing: sparing)
    }

    func insert(_ request: DeploymentRequest) async throws(StoreError) -> Deployment {
        try check(.insert)
        if request.kind == .rollback { try check(.insertRollback) }
        return try await base.insert(request)
    }

    func reserveDeploymentIDs(above id: Int64) async throws(StoreError) {
        try await base.reserveDeploymentIDs(above: id)
    }

    func importHistory(_ deployments: [Deployment]) async throws(StoreError) -> [Deployment] {
        try await base.importHistory(deployments)
    }

    func save(_ deployment: Deployment) async throws(StoreError) {
        try check(.saveDeployment)
        if deployment.phase == .switch && deployment.status == .running { try check(.saveSwitchingDeployment) }
        try await base.save(deployment)
    }

    func deployment(_ id: Int64) async throws(StoreError) -> Deployment? { try await base.deployment(id) }

    func deployments(app: String, limit: Int, before: Int64?) async throws(StoreError) -> [Deployment] {
        try await base.deployments(app: app, limit: limit, before: before)
    }

    func deployments(status: DeploymentStatus) async throws(StoreError) -> [Deployment] {
        try await base.deployments(status: status)
    }

    func latestDeployments() async throws(StoreError) -> [String: Deployment] { try await base.latestDeployments() }
    func latestOutcomes() async throws(StoreError) -> [String: Deployment] { try await base.latestOutcomes() }
    func queuedCounts() async throws(StoreError) -> [String: Int] { try await base.queuedCounts() }

    func insertSteps(_ plans: [StepPlan]) async throws(StoreError) -> [StepRecord] {
        try check(.saveStep)
        return try await base.insertSteps(plans)
    }

    func save(_ step: StepRecord) async throws(StoreError) {
        try check(.saveStep)
        try check(.updateStep)
        try await base.save(step)
    }

    func steps(deployment id: Int64) async throws(StoreError) -> [StepRecord] { try await base.steps(deployment: id) }
    func runningSteps() async throws(StoreError) -> [StepRecord] { try await base.runningSteps() }

    func setProcessGroup(step id: Int64, group: Int32) async throws(StoreError) {
        try check(.saveStep)
        try await base.setProcessGroup(step: id, group: group)
    }

    func save(_ release: Release) async throws(StoreError) {
        try check(.saveRelease)
        if release.succeeded { try check(.saveSucceededRelease) }
        try await base.save(release)
    }

    func release(_ id: Int64) async throws(StoreError) -> Release? { try await base.release(id) }

    func releases(app: String, includeRemoved: Bool) async throws(StoreError) -> [Release] {
        try await base.releases(app: app, includeRemoved: includeRemoved)
    }

    func releases(ids: [Int64]) async throws(StoreError) -> [Int64: Release] { try await base.releases(ids: ids) }
    func appState(_ app: String) async throws(StoreError) -> AppState { try await base.appState(app) }
    func appStates() async throws(StoreError) -> [String: AppState] { try await base.appStates() }

    func updateAppState(
        _ app: String, _ change: @Sendable @escaping (inout AppState) -> Void
    ) async throws(StoreError) -> AppState {
        try check(.updateAppState)
        return try await base.updateAppState(app, change)
    }

    func recordDelivery(id: String, provider: String) async throws(StoreError) -> Bool {
        try await base.recordDelivery(id: id, provider: provider)
    }

    func flushDeliveries() async { await base.flushDeliveries() }

    func pruneDeliveries(olderThan age: TimeInterval) async throws(StoreError) {
        try await base.pruneDeliveries(olderThan: age)
    }

    func heartbeat(node name: String, version: String, startedAt: Date) async throws(StoreError) {
        try await base.heartbeat(node: name, version: version, startedAt: startedAt)
    }

    func nodeStopped(_ name: String) async throws(StoreError) { try await base.nodeStopped(name) }

    func nodes(downAfter: TimeInterval) async throws(StoreError) -> [NodeRecord] {
        try await base.nodes(downAfter: downAfter)
    }

    func takeLease(deployment id: Int64, owner: String, duration: TimeInterval) async throws(StoreError) -> Lease? {
        try await base.takeLease(deployment: id, owner: owner, duration: duration)
    }

    func renewLease(_ lease: Lease, duration: TimeInterval) async throws(StoreError) -> Bool {
        if leasesLost.withLock({ $0 }) { return false }
        return try await base.renewLease(lease, duration: duration)
    }

    func holdsLease(_ lease: Lease, margin: TimeInterval) async throws(StoreError) -> Bool {
        if leasesLost.withLock({ $0 }) { return false }
        return try await base.holdsLease(lease, margin: margin)
    }

    func leaseHolder(deployment id: Int64) async throws(StoreError) -> String? {
        if leasesLost.withLock({ $0 }) { return nil }
        return try await base.leaseHolder(deployment: id)
    }

    func interruptExpiredLeases(reason: String) async throws(StoreError) -> [Deployment] {
        try await base.interruptExpiredLeases(reason: reason)
    }
}
