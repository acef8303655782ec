import Foundation
import SlipwayAPI

/// The daemon's record of everything: deployments, their steps, releases, each app's state and the webhook
/// deliveries seen. The rest of Deploy knows the store only through this protocol; `SQLiteStore` is the embedded
/// one. Every implementation must pass the contract suite in `Tests/DeployTests/StoreContractTests.swift`.
///
/// Deployment ids are unique across apps and only ever increase, even after the newest rows are deleted.
public protocol DeployStore: Sendable {
    // MARK: Deployments

    /// Inserts a queued deployment. Every deployment of the same app still queued becomes `superseded` by it, in
    /// the same transaction, except `sparing`: one the queue has already started, which the store may not yet show
    /// as running. Returns the new deployment and the ones it superseded.
    func enqueue(
        _ request: DeploymentRequest, sparing: Int64?
    ) async throws(StoreError)
        -> (deployment: Deployment, superseded: [Deployment])

    /// Inserts a deployment that runs at once, bypassing the queue (an automatic rollback).
    func insert(_ request: DeploymentRequest) async throws(StoreError) -> Deployment

    /// Makes every deployment id given from now on greater than `id`: release directories and logs found on disk
    /// are named by ids that a lost or restored store no longer knows, and a new deployment must never share one.
    func reserveDeploymentIDs(above id: Int64) async throws(StoreError)

    /// Inserts finished deployments as given, with new ids, in one transaction: for importing history.
    func importHistory(_ deployments: [Deployment]) async throws(StoreError) -> [Deployment]

    func save(_ deployment: Deployment) async throws(StoreError)

    func deployment(_ id: Int64) async throws(StoreError) -> Deployment?

    /// An app's deployments, newest first, `limit` at most, older than `before` when given (keyset paging).
    func deployments(app: String, limit: Int, before: Int64?) async throws(StoreError) -> [Deployment]

    /// Every deployment with `status`, oldest first.
    func deployments(status: DeploymentStatus) async throws(StoreError) -> [Deployment]

    /// The newest deployment of every app.
    func latestDeployments() async throws(StoreError) -> [String: Deployment]

    /// For every app, the newest deployment that decides whether the app is `failed`: the newest one that
    /// succeeded, failed or was interrupted, not counting automatic rollbacks.
    func latestOutcomes() async throws(StoreError) -> [String: Deployment]

    /// How many deployments wait in each app's queue.
    func queuedCounts() async throws(StoreError) -> [String: Int]

    // MARK: Steps

    /// Records the steps a deployment will run, all `pending`, in one transaction.
    func insertSteps(_ plans: [StepPlan]) async throws(StoreError) -> [StepRecord]

    func save(_ step: StepRecord) async throws(StoreError)

    /// A deployment's steps in the order they run.
    func steps(deployment id: Int64) async throws(StoreError) -> [StepRecord]

    /// Steps still marked running, with the process groups they had.
    func runningSteps() async throws(StoreError) -> [StepRecord]

    /// Remembers the process group of a running step.
    func setProcessGroup(step id: Int64, group: Int32) async throws(StoreError)

    // MARK: Releases and app state

    func save(_ release: Release) async throws(StoreError)

    func release(_ id: Int64) async throws(StoreError) -> Release?

    /// An app's releases, newest first; only those still on disk unless `includeRemoved`.
    func releases(app: String, includeRemoved: Bool) async throws(StoreError) -> [Release]

    func releases(ids: [Int64]) async throws(StoreError) -> [Int64: Release]

    func appState(_ app: String) async throws(StoreError) -> AppState

    func appStates() async throws(StoreError) -> [String: AppState]

    /// Changes one app's state in a transaction and returns it as changed.
    @discardableResult
    func updateAppState(
        _ app: String, _ change: @Sendable @escaping (inout AppState) -> Void
    )
        async throws(StoreError) -> AppState

    // MARK: Webhook deliveries

    /// Records a delivery id; returns false when it was seen before, so that the delivery can be dropped.
    func recordDelivery(id: String, provider: String) async throws(StoreError) -> Bool

    /// Returns once every delivery id recorded before the call is durable.
    func flushDeliveries() async

    /// Forgets delivery ids older than `age`; forges do not redeliver after a few days.
    func pruneDeliveries(olderThan age: TimeInterval) async throws(StoreError)

    // MARK: Nodes

    /// Records that the node `name` is alive, at the store's clock (so that nodes on machines whose clocks differ
    /// are judged alike): added on its first heartbeat, and up again after it stopped.
    func heartbeat(node name: String, version: String, startedAt: Date) async throws(StoreError)

    /// Records that the node stopped, so that it is down at once instead of when its heartbeat grows old.
    func nodeStopped(_ name: String) async throws(StoreError)

    /// Every node that has used the store, by name. A node is up when its last heartbeat, by the store's clock,
    /// is younger than `downAfter` seconds and it has not stopped since.
    func nodes(downAfter: TimeInterval) async throws(StoreError) -> [NodeRecord]

    // MARK: Leases

    /// Gives `owner` the lease on deployment `id` for `duration` seconds, by the store's clock: nil when another
    /// owner holds a lease on it that has not expired. The new lease's fencing token is greater than every token
    /// given before it, for any deployment.
    func takeLease(deployment id: Int64, owner: String, duration: TimeInterval) async throws(StoreError) -> Lease?

    /// Extends a lease to `duration` seconds from now; false when it is no longer held (it expired, or another
    /// owner took it since). A lease that expired is lost even when nobody took it: another node may have marked
    /// its deployment interrupted.
    func renewLease(_ lease: Lease, duration: TimeInterval) async throws(StoreError) -> Bool

    /// Whether `lease` is still held, with at least `margin` seconds to go.
    func holdsLease(_ lease: Lease, margin: TimeInterval) async throws(StoreError) -> Bool

    /// The owner of the lease on deployment `id` while it has not expired, by the store's clock; nil when it
    /// expired or none was ever taken.
    func leaseHolder(deployment id: Int64) async throws(StoreError) -> String?

    /// Marks `interrupted`, with `reason` as its error, every running deployment whose lease has expired: its node
    /// died, or lost the store. Returns them as they are now.
    func interruptExpiredLeases(reason: String) async throws(StoreError) -> [Deployment]
}

extension DeployStore {
    public func deployments(app: String, limit: Int = 50) async throws(StoreError) -> [Deployment] {
        try await deployments(app: app, limit: limit, before: nil)
    }

    public func releases(app: String) async throws(StoreError) -> [Release] {
        try await releases(app: app, includeRemoved: false)
    }

    public func enqueue(
        _ request: DeploymentRequest
    ) async throws(StoreError)
        -> (deployment: Deployment, superseded: [Deployment])
    {
        try await enqueue(request, sparing: nil)
    }
}

/// Why the store could not do what it was asked. Each store maps its own errors (SQLite's, PostgreSQL's) to these
/// cases at the call site; the text of the error underneath goes to the daemon's log, not to clients.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file system that holds the store is full.
    case full
    /// The store cannot be reached or is busy for longer than it waits (a locked file, a database that is down).
    case unavailable(String)
    /// Anything else: a corrupt file, a failed migration, a constraint that should hold.
    case failed(String)

    public var description: String {
        switch self {
        case .full: "the state disk is full"
        case .unavailable(let reason): "the store is unavailable: \(reason)"
        case .failed(let reason): "the store failed: \(reason)"
        }
    }
}
