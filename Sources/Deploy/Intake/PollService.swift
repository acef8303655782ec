import Foundation
import Logging
import Pipeline
import ServiceLifecycle

/// Polls the apps that have `poll:`, each on its own interval, never two polls of one app at once.
struct PollService: Service {
    let registry: AppRegistry
    let intake: Intake
    let logger: Logger

    func run() async throws {
        let inFlight = Locked(Set<String>())
        var due: [String: ContinuousClock.Instant] = [:]
        let clock = ContinuousClock()
        await withDiscardingTaskGroup { group in
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
}
