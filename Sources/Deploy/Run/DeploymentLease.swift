import Foundation
import Logging
import Pipeline

/// A run's hold on its deployment in the store (`DeployStore.takeLease`), so that a deployment is run and ended by
/// one node only: taken when the run starts, renewed while it works, and checked before every switch of `current`
/// and before the outcome is recorded. When a renewal finds it lost, the run is cancelled (`.leaseLost`) and
/// records nothing more; the node that found the lease expired has marked the deployment `interrupted`.
final class DeploymentLease: Sendable {
    /// How long a lease runs past its last renewal, by the store's clock.
    static let duration: TimeInterval = 30
    /// How often a run renews it: three tries before it runs out.
    static let renewEvery: Duration = .seconds(10)
    /// How soon a renewal the store could not answer is tried again, so that a run finds out soon after the store
    /// is back whether it still holds its lease.
    static let retryEvery: Duration = .seconds(1)
    /// How long a lease must still run when it is checked before a switch; the switch itself takes milliseconds.
    static let margin: TimeInterval = 5

    private let lease: Lease
    private let store: any DeployStore
    private let renewal: Task<Void, Never>

    /// Takes the lease on `deployment` for `owner`; nil when another node holds it. Until `release`, it is renewed,
    /// and `cancellation` is cancelled the first time a renewal finds it lost. A renewal the store cannot answer
    /// (it is away) is tried again every `retryEvery`: the lease runs out by itself if the store stays away.
    static func take(
        deployment: Int64, owner: String, store: any DeployStore, cancellation: RunCancellation, logger: Logger
    ) async throws(StoreError) -> DeploymentLease? {
        guard let lease = try await store.takeLease(deployment: deployment, owner: owner, duration: duration) else {
            return nil
        }
        return DeploymentLease(lease: lease, store: store, cancellation: cancellation, logger: logger)
    }

    private init(lease: Lease, store: any DeployStore, cancellation: RunCancellation, logger: Logger) {
        self.lease = lease
        self.store = store
        renewal = Task {
            var pause = Self.renewEvery
            var failing = false
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: pause)
                } catch {
                    return
                }
                do {
                    if try await store.renewLease(lease, duration: Self.duration) {
                        pause = Self.renewEvery
                        failing = false
                        continue
                    }
                    logger.error("lost the lease on deployment \(lease.deploymentID) (fence \(lease.fence)); it stops")
                    cancellation.cancel(.leaseLost)
                    return
                } catch {
                    if !failing {
                        logger.warning("cannot renew the lease on deployment \(lease.deploymentID): \(error)")
                    }
                    failing = true
                    pause = Self.retryEvery
                }
            }
        }
    }

    /// Whether the lease is still held, with `margin` seconds to go.
    func isHeld(margin: TimeInterval = 0) async throws(StoreError) -> Bool {
        try await store.holdsLease(lease, margin: margin)
    }

    /// Stops renewing; the lease runs out by itself.
    func release() {
        renewal.cancel()
    }
}
