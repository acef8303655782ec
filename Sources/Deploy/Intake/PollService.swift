import Foundation
import Logging
import Pipeline
import ServiceLifecycle

/// Catches up at start-up, then polls the apps that have `poll:`, each on its own interval, never two polls of one
/// app at once.
///
/// Catching up is what keeps a push made while the daemon was down from being lost: every app's branch head is
/// compared with the last head the daemon saw, and deployed (trigger `catch_up`) when it moved. After that, each
/// poll does the same for its app.
struct PollService: Service {
    let registry: AppRegistry
    let intake: Intake
    let logger: Logger

    func run() async throws {
        let inFlight = Locked(Set<String>())
        var due: [String: ContinuousClock.Instant] = [:]
        let clock = ContinuousClock()
        await withDiscardingTaskGroup { group in
            // Each app catches up on its own, beside the others; a poll of an app waits for its catch-up, but a
            // repository that cannot be reached holds up no other app.
            for pipeline in registry.pipelines {
                inFlight.withLock { _ = $0.insert(pipeline.app) }
                group.addTask {
                    defer { _ = inFlight.withLock { $0.remove(pipeline.app) } }
                    await catchUp(pipeline.app)
                }
            }
            while true {
                for pipeline in registry.pipelines {
                    guard let interval = pipeline.poll else { continue }
                    let now = clock.now
                    if let next = due[pipeline.app], next > now { continue }
                    due[pipeline.app] = now + interval
                    guard inFlight.withLock({ $0.insert(pipeline.app).inserted }) else { continue }
                    group.addTask {
                        defer { _ = inFlight.withLock { $0.remove(pipeline.app) } }
                        do {
                            _ = try await intake.poll(app: pipeline.app)
                        } catch {
                            logger.about(app: pipeline.app).warning("polling failed: \(error)")
                        }
                    }
                }
                // Each app's interval is checked twice a second; a shutdown ends the wait at once.
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(500)) }
                } catch {
                    return
                }
            }
        }
    }

    private func catchUp(_ app: String) async {
        do {
            for deployment in try await intake.catchUp(app: app) {
                logger.about(app: app, deployment: deployment.id)
                    .notice("catching up: the branch is at \(deployment.shortCommit), which the daemon had not seen")
            }
        } catch {
            logger.about(app: app).warning("catching up failed: \(error)")
        }
    }
}
