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
    /// Called with the apps whose pipeline changed, before any of them deploys again: an app added (or pointed at
    /// another `deploy_to`) may find releases there that the store does not know.
    let adopt: @Sendable ([Pipeline]) async -> Void

    init(
        registry: AppRegistry, logger: Logger, interval: Duration = .seconds(1),
        adopt: @escaping @Sendable ([Pipeline]) async -> Void = { _ in }
    ) {
        self.registry = registry
        self.logger = logger
        self.interval = interval
        self.adopt = adopt
    }

    private func adopt(_ changed: [String]) async {
        let pipelines = registry.pipelines.filter { changed.contains($0.app) }
        if !pipelines.isEmpty { await adopt(pipelines) }
    }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in signals.cancelOnGracefulShutdown() {
                    let changed = await registry.reload(force: true)
                    await adopt(changed)
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
                    await adopt(changed)
                    if !changed.isEmpty { logger.info("pipeline files changed: \(changed.joined(separator: ", "))") }
                }
            }
        }
    }
}
