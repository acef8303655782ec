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
    /// Called after a reload that changed an app: the mirrors follow the repositories the pipelines name.
    let changed: @Sendable () async -> Void

    init(
        registry: AppRegistry, logger: Logger, interval: Duration = .seconds(1),
        changed: @escaping @Sendable () async -> Void = {}
    ) {
        self.registry = registry
        self.logger = logger
        self.interval = interval
        self.changed = changed
    }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in signals.cancelOnGracefulShutdown() {
                    let apps = await registry.reload(force: true)
                    let names = apps.isEmpty ? "none" : apps.joined(separator: ", ")
                    logger.info("SIGHUP: reloaded the pipeline files; changed: \(names)")
                    if !apps.isEmpty { await changed() }
                }
            }
            group.addTask {
                while true {
                    do {
                        try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                    } catch {
                        return
                    }
                    let apps = await registry.reload()
                    if !apps.isEmpty {
                        logger.info("pipeline files changed: \(apps.joined(separator: ", "))")
                        await changed()
                    }
                }
            }
        }
    }
}
