import Foundation
import Pipeline

/// What start-up recovery found and did.
public struct RecoveryReport: Sendable, Equatable {
    /// Deployments that were running when the daemon stopped, now `interrupted`.
    public var interrupted: [Int64] = []
    /// Process groups of steps that outlived the daemon, now ended.
    public var endedProcessGroups: [Int32] = []
    /// Release directories that never went live (or were being removed), now gone.
    public var removedReleases: [String: [Int64]] = [:]
    /// Temporary links and half-removed trees left by a switch or removal that was cut short.
    public var removedLeftovers: [String: [String]] = [:]
    /// Apps whose store disagreed with their `current` link, and the release the link named (the link wins).
    public var correctedLiveReleases: [String: Int64?] = [:]

    public var isClean: Bool {
        interrupted.isEmpty && endedProcessGroups.isEmpty && removedReleases.isEmpty && removedLeftovers.isEmpty
            && correctedLiveReleases.isEmpty
    }
}

/// Brings the store and the disk back into agreement after a stop or a crash. Run it once at start-up, before
/// any deployment starts.
public struct Recovery: Sendable {
    public let context: DeployContext

    public init(context: DeployContext) {
        self.context = context
    }

    public func run(pipelines: [Pipeline]) async throws -> RecoveryReport {
        var report = RecoveryReport()
        let store = context.store

        // 1. Steps that outlived the daemon: their process groups get SIGTERM, then SIGKILL.
        for var step in try await store.runningSteps() {
            if let group = step.processGroup, ProcessGroup(group).isAlive {
                await ProcessGroup(group).terminate(grace: context.runner.killGrace)
                report.endedProcessGroups.append(group)
            }
            step.status = .cancelled
            step.finishedAt = Date()
            step.processGroup = nil
            try await store.save(step)
        }

        // 2. Deployments that were running are interrupted; nothing is retried behind the user's back. Any of their
        //    step processes the store had no group for are found by their environment and ended too.
        let layouts = Dictionary(pipelines.map { ($0.app, context.layout(for: $0)) }, uniquingKeysWith: { a, _ in a })
        for var deployment in try await store.deployments(status: .running) {
            if let layout = layouts[deployment.app] {
                for group in StrayProcesses.groups(deployment: deployment.id!, deployTo: layout.deployTo) where group.isAlive {
                    await group.terminate(grace: context.runner.killGrace)
                    if !report.endedProcessGroups.contains(group.id) { report.endedProcessGroups.append(group.id) }
                }
            }
            deployment.status = .interrupted
            deployment.finishedAt = Date()
            deployment.durationMs = deployment.startedAt.map { Int(Date().timeIntervalSince($0) * 1000) }
            deployment.error = "the daemon stopped during \(deployment.phase.rawValue)"
            try await store.save(deployment)
            for var step in try await store.steps(deployment: deployment.id!) where step.status == .pending {
                step.status = .skipped
                try await store.save(step)
            }
            report.interrupted.append(deployment.id!)
            context.logger.warning("deployment \(deployment.id!) of \(deployment.app) was interrupted during \(deployment.phase.rawValue)")
        }

        // 3. The disk: the `current` link is the truth; releases that never went live are removed.
        for pipeline in pipelines {
            let layout = context.layout(for: pipeline)
            let leftovers = layout.removeLeftovers()
            if !leftovers.isEmpty { report.removedLeftovers[pipeline.app] = leftovers }

            let live = layout.currentRelease().flatMap { layout.hasRelease($0) ? $0 : nil }
            let state = try await store.appState(pipeline.app)
            if state.liveRelease != live {
                try await store.updateAppState(pipeline.app) { $0.liveRelease = live }
                report.correctedLiveReleases[pipeline.app] = live
            }
            if let live, try await store.release(live) == nil, let built = try await store.deployment(live) {
                // The switch happened but the daemon stopped before recording it.
                try await store.save(
                    Release(
                        id: live, app: pipeline.app, commit: built.commit, message: built.message, author: built.author,
                        createdAt: built.startedAt ?? built.createdAt, succeeded: false))
            }

            let known = try await store.releases(ids: layout.releasesOnDisk())
            var removed: [Int64] = []
            for id in layout.releasesOnDisk() where id != live {
                if let release = known[id], release.isKept { continue }
                layout.removeRelease(id)
                removed.append(id)
            }
            if !removed.isEmpty { report.removedReleases[pipeline.app] = removed }
            for var release in try await store.releases(app: pipeline.app) where !layout.hasRelease(release.id) {
                release.removedAt = Date()
                try await store.save(release)
            }
        }
        return report
    }
}
