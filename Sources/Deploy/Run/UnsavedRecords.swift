import Logging
import ServiceLifecycle

/// The last records of finished deployments that the store could not write (a full state disk, a database that
/// went away), kept to be written again once it can: a deployment that has ended does not stay `running` in the
/// store until the next start.
///
/// Only final records are kept, so a later write never takes back a newer state: nothing changes a deployment or a
/// step once it has ended.
actor UnsavedRecords {
    private var deployments: [Int64: Deployment] = [:]
    private var steps: [Int64: StepRecord] = [:]

    func keep(_ deployment: Deployment) { deployments[deployment.id] = deployment }

    func keep(_ step: StepRecord) { steps[step.id] = step }

    var isEmpty: Bool { deployments.isEmpty && steps.isEmpty }

    /// Tries to write each kept record once: the steps first, so that whoever sees a deployment's end also sees its
    /// steps' ends. What is written is no longer kept.
    func write(to store: any DeployStore, logger: Logger) async {
        for (id, step) in steps.sorted(by: { $0.key < $1.key }) {
            guard (try? await store.save(step)) != nil else { return }
            steps[id] = nil
        }
        for (id, deployment) in deployments.sorted(by: { $0.key < $1.key }) {
            guard (try? await store.save(deployment)) != nil else { return }
            deployments[id] = nil
            logger.about(app: deployment.app, deployment: id)
                .notice("recorded at last that deployment \(id) \(deployment.status.rawValue)")
        }
    }
}

/// Writes the unsaved records again every few seconds, and once more as the daemon stops.
struct UnsavedRecordsService: Service {
    let records: UnsavedRecords
    let store: any DeployStore
    let logger: Logger
    var interval: Duration = .seconds(5)

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { [interval] in try await Task.sleep(for: interval) }
            await records.write(to: store, logger: logger)
        }
    }
}

extension UnsavedRecordsService: CustomStringConvertible {
    var description: String { "UnsavedRecordsService" }
}
