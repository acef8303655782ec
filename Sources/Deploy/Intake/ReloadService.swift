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
    /// Called after a reload that changed (added, edited or removed) an app, with the pipelines of the apps that
    /// changed and still exist, before any of them deploys again: the mirrors follow the repositories the pipelines
    /// name, and an app added (or pointed at another `deploy_to`) adopts the releases it finds there.
    let changed: @Sendable ([Pipeline]) async -> Void

    init(
        registry: AppRegistry, logger: Logger, interval: Duration = .seconds(1),
        changed: @escaping @Sendable ([Pipeline]) async -> Void = { _ in }
    ) {
        self.registry = registry
        self.logger = logger
        self.interval = interval
        self.changed = changed
    }

    private func changed(_ apps: [String]) async {
        guard !apps.isEmpty else { return }
        await changed(registry.pipelines.filter { apps.contains($0.app) })
    }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in signals.cancelOnGracefulShutdown() {
                    let apps = await registry.reload(force: true)
                    let names = apps.isEmpty ? "none" : apps.joined(separator: ", ")
                    logger.info("SIGHUP: reloaded the pipeline files; changed: \(names)")
                    await changed(apps)
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
                    if !apps.isEmpty { logger.info("pipeline files changed: \(apps.joined(separator: ", "))") }
                    await changed(apps)
                }
            }
        }
    }
}
