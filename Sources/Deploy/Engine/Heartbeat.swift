import Foundation
import Logging
import ServiceLifecycle
import SlipwayAPI

/// This daemon's heartbeat in the store, under its `--node` name: GET /api/v1/nodes lists every node whose
/// heartbeats the store holds, `up` while they keep coming. The first one is written by `Daemon.prepare`, so that
/// a node is listed as soon as it serves; the service writes one every `interval`, and marks the node stopped when
/// the daemon stops, so that a graceful stop shows `down` at once.
///
/// With each heartbeat it also ends what a dead node left running: a running deployment whose lease has expired is
/// marked `interrupted` (`DeployStore.interruptExpiredLeases`), and never run again by itself.
struct HeartbeatService: Service {
    /// How often a node says it is alive.
    static let interval: Duration = .seconds(5)
    /// How old its last heartbeat may be before a node is `down`: three missed heartbeats, so that one slow write
    /// does not flap it.
    static let downAfter: TimeInterval = 15

    let node: String
    let startedAt: Date
    let store: any DeployStore
    let events: EventBus
    let logger: Logger

    static func beat(node: String, startedAt: Date, store: any DeployStore) async throws(StoreError) {
        try await store.heartbeat(node: node, version: SlipwayVersion.current, startedAt: startedAt)
    }

    func run() async throws {
        var failing = false
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.interval) }
            } catch {
                break
            }
            do {
                try await Self.beat(node: node, startedAt: startedAt, store: store)
                if failing { logger.notice("the heartbeat of node \(node) is written again") }
                failing = false
            } catch {
                // Said once per outage: the store's own errors are logged where it fails.
                if !failing { logger.warning("cannot write the heartbeat of node \(node): \(error)") }
                failing = true
                continue
            }
            do {
                try await interruptExpired()
            } catch {
                logger.warning("cannot look for deployments whose lease expired: \(error)")
            }
        }
        do {
            try await store.nodeStopped(node)
        } catch {
            logger.warning("cannot record that node \(node) stopped: \(error); it shows down once its heartbeat is old")
        }
    }
}

extension HeartbeatService {
    static let expiredReason =
        "interrupted: the node running it stopped renewing its lease (it stopped, or lost the store)"

    private func interruptExpired() async throws(StoreError) {
        for deployment in try await store.interruptExpiredLeases(reason: Self.expiredReason) {
            logger.warning("deployment \(deployment.id) of \(deployment.app): its lease expired; marked interrupted")
            events.publish(.deployment(deployment))
        }
    }
}

extension HeartbeatService: CustomStringConvertible {
    var description: String { "HeartbeatService" }
}
