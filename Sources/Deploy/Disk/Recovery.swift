import Foundation
import Pipeline
import SlipwayAPI

/// What start-up recovery found and did.
public struct RecoveryReport: Sendable, Equatable {
    /// Deployments that were running when the daemon stopped, now `interrupted`.
    public var interrupted: [Int64] = []
    /// Process groups of steps that outlived the daemon, now ended.
    public var endedProcessGroups: [Int32] = []
    /// Release directories that never went live (or were being removed), now gone.
    public var removedReleases: [String: [Int64]] = [:]
    /// Release directories the store did not know (it was lost, or an older copy was restored), now on record as
    /// they are: the live one as live, the others as kept.
    public var adoptedReleases: [String: [Int64]] = [:]
    /// Temporary links and half-removed trees left by a switch or removal that was cut short.
    public var removedLeftovers: [String: [String]] = [:]
    /// Apps whose store disagreed with their `current` link, and the release the link named (the link wins).
    public var correctedLiveReleases: [String: Int64?] = [:]
    /// Apps switched back from a gated push's release (which git refused when the daemon stopped) to the release of
    /// the branch's commit.
    public var switchedBack: [String: (from: Int64, to: Int64)] = [:]

    public var isClean: Bool {
        interrupted.isEmpty && endedProcessGroups.isEmpty && removedReleases.isEmpty && adoptedReleases.isEmpty
            && removedLeftovers.isEmpty && correctedLiveReleases.isEmpty && switchedBack.isEmpty
    }

    public static func == (lhs: RecoveryReport, rhs: RecoveryReport) -> Bool {
        lhs.interrupted == rhs.interrupted && lhs.endedProcessGroups == rhs.endedProcessGroups
            && lhs.removedReleases == rhs.removedReleases && lhs.adoptedReleases == rhs.adoptedReleases
            && lhs.removedLeftovers == rhs.removedLeftovers
            && lhs.correctedLiveReleases == rhs.correctedLiveReleases
            && lhs.switchedBack.mapValues { [$0.from, $0.to] } == rhs.switchedBack.mapValues { [$0.from, $0.to] }
    }

    /// One line per thing recovery did, for the operator.
    public var summary: [String] {
        var lines: [String] = []
        if !interrupted.isEmpty {
            lines.append("marked interrupted: deployment \(interrupted.map(String.init).joined(separator: ", "))")
        }
        if !endedProcessGroups.isEmpty {
            let groups = endedProcessGroups.map(String.init).joined(separator: ", ")
            lines.append(
                "ended the leftover processes of \(endedProcessGroups.count) step(s) (process group \(groups))")
        }
        for (app, ids) in removedReleases.sorted(by: { $0.key < $1.key }) {
            lines.append(
                "\(app): removed releases that never went live: \(ids.map(String.init).joined(separator: ", "))")
        }
        for (app, ids) in adoptedReleases.sorted(by: { $0.key < $1.key }) {
            lines.append(
                "\(app): adopted releases found on disk that the store did not know: "
                    + ids.map(String.init).joined(separator: ", "))
        }
        for (app, names) in removedLeftovers.sorted(by: { $0.key < $1.key }) {
            lines.append("\(app): removed what an interrupted switch left: \(names.joined(separator: ", "))")
        }
        for (app, switched) in switchedBack.sorted(by: { $0.key < $1.key }) {
            lines.append(
                "\(app): switched back from release \(switched.from) to release \(switched.to): git refused the "
                    + "gated push of release \(switched.from) when the daemon stopped")
        }
        for (app, live) in correctedLiveReleases.sorted(by: { $0.key < $1.key }) {
            let now = live.map { "release \($0)" } ?? "no release"
            lines.append("\(app): the store now agrees with the current link: \(now) is live")
        }
        return lines
    }
}

/// Brings the store and the disk back into agreement after a stop or a crash. Run it once at start-up, before any
/// deployment starts.
struct Recovery: Sendable {
    let context: DeployContext

    func run(pipelines: [Pipeline]) async throws(StoreError) -> RecoveryReport {
        var report = RecoveryReport()
        try await reserveIDs(for: pipelines)
        try await endLeftoverSteps(of: Set(pipelines.map(\.app)), &report)
        let refused = try await interruptRunningDeployments(pipelines, &report)
        for pipeline in pipelines {
            if let gated = refused[pipeline.app] { try await switchBack(from: gated, of: pipeline, &report) }
            try await reconcileDisk(of: pipeline, &report)
        }
        return report
    }

    /// For apps added or changed while the daemon runs: what start-up recovery does for the disk, except that
    /// nothing is removed and a live release already on record is left as it is (the app may be deploying). New ids
    /// go above the releases found, unknown ones are adopted, and an app the store knows nothing live of takes the
    /// `current` link's release as live.
    func adopt(_ pipelines: [Pipeline]) async throws(StoreError) -> RecoveryReport {
        var report = RecoveryReport()
        try await reserveIDs(for: pipelines)
        for pipeline in pipelines {
            let layout = context.layout(for: pipeline)
            let live = layout.currentRelease().flatMap { layout.hasRelease($0) ? $0 : nil }
            try await adoptReleases(of: pipeline, live: live, &report)
            if let live, try await context.store.appState(pipeline.app).liveRelease == nil {
                try await context.store.updateAppState(pipeline.app) { $0.liveRelease = live }
                report.correctedLiveReleases[pipeline.app] = live
            }
        }
        return report
    }

    /// Whether deployment `id` is this node's to recover: nobody holds its lease, or this node does (it ran it
    /// before a restart). A lease another node holds means that node runs it; on a store shared by several nodes,
    /// one starting up must not end another's work.
    private func isOurs(_ id: Int64) async throws(StoreError) -> Bool {
        let holder = try await context.store.leaseHolder(deployment: id)
        return holder == nil || holder == context.node
    }

    /// Steps that outlived the daemon: their process groups get SIGTERM, then SIGKILL. A process group is a number
    /// on the machine that ran the step, so only those of apps defined here are signalled.
    private func endLeftoverSteps(of apps: Set<String>, _ report: inout RecoveryReport) async throws(StoreError) {
        let store = context.store
        for var step in try await store.runningSteps() {
            guard try await isOurs(step.deploymentId) else { continue }
            let app = try await store.deployment(step.deploymentId)?.app
            if let group = step.processGroup, let app, apps.contains(app), ProcessGroup(group).isAlive {
                await ProcessGroup(group).terminate(grace: context.runner.killGrace)
                report.endedProcessGroups.append(group)
            }
            step.status = .cancelled
            step.finishedAt = Date()
            step.processGroup = nil
            try await store.save(step)
        }
    }

    /// Deployments that were running are interrupted, except those whose lease another node holds; nothing is
    /// retried behind the user's back. Any of their step processes the store had no group for are found by their
    /// environment and ended too. Returns, by app, the gated deployments among them: git refused their pushes when
    /// the daemon (and with it the hook's answer) went.
    private func interruptRunningDeployments(
        _ pipelines: [Pipeline], _ report: inout RecoveryReport
    )
        async throws(StoreError) -> [String: Deployment]
    {
        var gated: [String: Deployment] = [:]
        let store = context.store
        let layouts = Dictionary(pipelines.map { ($0.app, context.layout(for: $0)) }, uniquingKeysWith: { a, _ in a })
        for var deployment in try await store.deployments(status: .running) {
            guard try await isOurs(deployment.id) else {
                context.logger.about(app: deployment.app, deployment: deployment.id)
                    .notice("left running: another node holds its lease")
                continue
            }
            if let layout = layouts[deployment.app] {
                for group in StrayProcesses.groups(deployment: deployment.id, deployTo: layout.deployTo)
                where group.isAlive {
                    await group.terminate(grace: context.runner.killGrace)
                    if !report.endedProcessGroups.contains(group.id) { report.endedProcessGroups.append(group.id) }
                }
            }
            let now = Date()
            deployment.status = .interrupted
            deployment.finishedAt = now
            deployment.durationMs = deployment.startedAt.map { max(0, Int(now.timeIntervalSince($0) * 1000)) }
            deployment.error = "the daemon stopped during \(deployment.phase.rawValue)"
            try await store.save(deployment)
            for var step in try await store.steps(deployment: deployment.id) where step.status == .pending {
                step.status = .skipped
                try await store.save(step)
            }
            report.interrupted.append(deployment.id)
            if deployment.isGated { gated[deployment.app] = deployment }
            context.logger.about(app: deployment.app, deployment: deployment.id)
                .warning("interrupted during \(deployment.phase.rawValue) by the daemon's stop")
        }
        return gated
    }

    /// A gated deployment that had switched `current` when the daemon stopped: git refused its push, so the branch
    /// still points at the commit that was live before, and `current` goes back to that commit's kept release.
    private func switchBack(
        from gated: Deployment, of pipeline: Pipeline, _ report: inout RecoveryReport
    )
        async throws(StoreError)
    {
        let layout = context.layout(for: pipeline)
        guard layout.currentRelease() == gated.id, let base = gated.gatedFrom else { return }
        let target = try await context.store.releases(app: pipeline.app)
            .first { $0.commit == base && $0.id != gated.id && layout.hasRelease($0.id) }
        guard let target else { return }
        do {
            try await layout.switchCurrent(to: target.id)
        } catch {
            context.logger.about(app: pipeline.app).error("cannot switch back to release \(target.id): \(error)")
            return
        }
        report.switchedBack[pipeline.app] = (gated.id, target.id)
        // Like any release that failed after its switch, it goes.
        await layout.removeRelease(gated.id)
        if var release = try await context.store.release(gated.id) {
            release.removedAt = Date()
            try await context.store.save(release)
        }
    }

    /// New deployment ids go above every release directory and log on disk, so that none is ever given a directory
    /// that exists: the store may have lost its history (deleted, or an older copy restored) while the disk kept it.
    func reserveIDs(for pipelines: [Pipeline]) async throws(StoreError) {
        var highest: Int64 = 0
        for pipeline in pipelines {
            let layout = context.layout(for: pipeline)
            highest = max(highest, layout.releasesOnDisk().last ?? 0, layout.currentRelease() ?? 0)
        }
        let logs = (try? FileManager.default.contentsOfDirectory(atPath: context.stateDirectory + "/logs")) ?? []
        for name in logs where name.hasSuffix(".log") {
            highest = max(highest, Int64(name.dropLast(".log".count)) ?? 0)
        }
        if highest > 0 { try await context.store.reserveDeploymentIDs(above: highest) }
    }

    /// The `current` link is the truth. A release directory is removed only when the store proves that this daemon
    /// made it and that it never went live (or was being removed); one the store does not know is adopted as it is,
    /// since a store that does not know a release is no proof that it is not someone's live site.
    private func reconcileDisk(of pipeline: Pipeline, _ report: inout RecoveryReport) async throws(StoreError) {
        let store = context.store
        let layout = context.layout(for: pipeline)
        let leftovers = await layout.removeLeftovers()
        if !leftovers.isEmpty { report.removedLeftovers[pipeline.app] = leftovers }

        let live = layout.currentRelease().flatMap { layout.hasRelease($0) ? $0 : nil }
        try await adoptReleases(of: pipeline, live: live, &report)
        let state = try await store.appState(pipeline.app)
        if state.liveRelease != live {
            try await store.updateAppState(pipeline.app) { $0.liveRelease = live }
            report.correctedLiveReleases[pipeline.app] = live
        }

        let onDisk = layout.releasesOnDisk()
        let known = try await store.releases(ids: onDisk)
        var removed: [Int64] = []
        for id in onDisk where id != live {
            if let release = known[id] {
                guard release.app == pipeline.app, !release.isKept else { continue }
            } else {
                // No release on record: proof only if this app's deployment of that id never switched.
                guard let deployment = try await store.deployment(id), deployment.app == pipeline.app else { continue }
            }
            await layout.removeRelease(id)
            removed.append(id)
        }
        if !removed.isEmpty { report.removedReleases[pipeline.app] = removed }
        for var release in try await store.releases(app: pipeline.app) where !layout.hasRelease(release.id) {
            release.removedAt = Date()
            try await store.save(release)
        }
    }

    /// Puts on record the release directories of `pipeline`'s app that the store knows nothing of: with what
    /// `.slipway/releases/<id>.json` says of them, or, with nothing known, as releases of an unknown commit. A
    /// directory that the store knows as another app's deployment or release is left alone and off record. The live
    /// release, switched to by a daemon that stopped before recording it, is put on record from its deployment.
    func adoptReleases(of pipeline: Pipeline, live: Int64?, _ report: inout RecoveryReport) async throws(StoreError) {
        let store = context.store
        let layout = context.layout(for: pipeline)
        let onDisk = layout.releasesOnDisk()
        let known = try await store.releases(ids: onDisk)
        var adopted: [Int64] = []
        for id in onDisk where known[id] == nil {
            let built = try await store.deployment(id)
            if let built, built.app != pipeline.app { continue }
            let info = layout.info(id).flatMap { $0.id == id && $0.app == pipeline.app ? $0 : nil }
            if let info, info.succeeded {
                // It went live once, whatever an older copy of the store says of its deployment.
                try await store.save(info)
                adopted.append(id)
            } else if let built {
                // The daemon made it and it never succeeded: only the live one goes on record; the rest go.
                guard id == live else { continue }
                try await store.save(
                    Release(
                        id: id, app: pipeline.app, commit: built.commit, message: built.message, author: built.author,
                        createdAt: built.startedAt ?? built.createdAt, succeeded: false))
            } else {
                try await store.save(
                    info
                        ?? Release(
                            id: id, app: pipeline.app, commit: "", message: "", author: "",
                            createdAt: layout.creationDate(id) ?? Date(), succeeded: true))
                adopted.append(id)
            }
        }
        if !adopted.isEmpty { report.adoptedReleases[pipeline.app] = adopted }
    }
}
