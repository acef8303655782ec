import Foundation
import Logging
import Pipeline
import ServiceLifecycle
import UnixSignals

/// Polls the apps that have `poll:`, each on its own interval, never two polls of one app at once.
public struct PollService: Service {
    let registry: AppRegistry
    let watcher: Watcher
    let logger: Logger

    public init(registry: AppRegistry, watcher: Watcher, logger: Logger) {
        self.registry = registry
        self.watcher = watcher
        self.logger = logger
    }

    public func run() async throws {
        let inFlight = Locked(Set<String>())
        var due: [String: ContinuousClock.Instant] = [:]
        let clock = ContinuousClock()
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                for pipeline in registry.pipelines {
                    guard let interval = pipeline.poll else { continue }
                    let now = clock.now
                    if let next = due[pipeline.app], next > now { continue }
                    due[pipeline.app] = now + interval
                    guard inFlight.withLock({ $0.insert(pipeline.app).inserted }) else { continue }
                    group.addTask {
                        defer { _ = inFlight.withLock { $0.remove(pipeline.app) } }
                        do {
                            _ = try await watcher.poll(app: pipeline.app)
                        } catch {
                            logger.warning("polling \(pipeline.app) failed: \(error)")
                        }
                    }
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}

/// Reloads the pipeline files on SIGHUP, and whenever one of them changes on disk.
public struct ReloadService: Service {
    let registry: AppRegistry
    let logger: Logger
    /// How often the folder is checked for changed files.
    let interval: Duration

    public init(registry: AppRegistry, logger: Logger, interval: Duration = .seconds(1)) {
        self.registry = registry
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in signals.cancelOnGracefulShutdown() {
                    let changed = await registry.reload(force: true)
                    logger.info("SIGHUP: reloaded the pipeline files; changed: \(changed.isEmpty ? "none" : changed.joined(separator: ", "))")
                }
            }
            group.addTask {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await Task.sleep(for: interval)
                    let changed = await registry.reload()
                    if !changed.isEmpty { logger.info("pipeline files changed: \(changed.joined(separator: ", "))") }
                }
            }
        }
    }
}
