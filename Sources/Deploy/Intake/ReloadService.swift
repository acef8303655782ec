import Foundation
import Logging
import Pipeline
import ServiceLifecycle
import UnixSignals

/// Reloads the pipeline files on SIGHUP, and whenever one of them changes on disk.
struct ReloadService: Service {
    let registry: AppRegistry
    let logger: Logger
    /// How often the folder is checked for changed files.
    let interval: Duration

    init(registry: AppRegistry, logger: Logger, interval: Duration = .seconds(1)) {
        self.registry = registry
        self.logger = logger
        self.interval = interval
    }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in signals.cancelOnGracefulShutdown() {
                    let changed = await registry.reload(force: true)
                    let names = changed.isEmpty ? "none" : changed.joined(separator: ", ")
                    logger.info("SIGHUP: reloaded the pipeline files; changed: \(names)")
                }
            }
            group.addTask {
                while true {
                    do {
                        try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                    } catch {
                        return
                    }
                    let changed = await registry.reload()
                    if !changed.isEmpty { logger.info("pipeline files changed: \(changed.joined(separator: ", "))") }
                }
            }
        }
    }
}
