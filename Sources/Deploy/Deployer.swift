import Foundation
import GitKit
import Logging
import Pipeline

/// Runs one deployment from `queued` to its end: fetch, checkout, build, test, migrate, switch, activate, health.
///
/// The order of effects is what makes a crash at any moment safe: the release is complete on disk before
/// `current` moves, `current` moves in one rename, and the store is told only after the disk is right, so that
/// on restart the disk can always be believed.
public struct Deployer: Sendable {
    public let context: DeployContext

    public init(context: DeployContext) {
        self.context = context
    }

    /// Runs `deployment`, which must be queued, and returns it as it ended. It never throws: every failure
    /// becomes the deployment's status and error, and is in its log.
    public func run(
        _ deployment: Deployment, pipeline: Pipeline, mirror: Mirror, cancellation: Cancellation = Cancellation()
    ) async -> Deployment {
        let run = DeploymentRun(
            deployment: deployment, pipeline: pipeline, mirror: mirror, context: context, cancellation: cancellation)
        return await run.perform()
    }
}

/// Why a deployment stopped early, as it goes in the deployment's `error`.
struct DeploymentFailure: Error {
    let message: String
    var cancelled = false
}

/// The state of one deployment while it runs. Used by one task only.
final class DeploymentRun {
    var deployment: Deployment
    let pipeline: Pipeline
    let mirror: Mirror
    let context: DeployContext
    let cancellation: Cancellation
    let layout: ReleaseLayout
    var log: DeploymentLog!
    var steps: [StepRecord] = []
    /// Steps whose last change could not be written (a full disk); written again before the deployment ends.
    var unsavedSteps: Set<Int> = []
    /// The release live when this deployment started, to switch back to if activate or health fails.
    var previousRelease: Release?

    init(deployment: Deployment, pipeline: Pipeline, mirror: Mirror, context: DeployContext, cancellation: Cancellation) {
        self.deployment = deployment
        self.pipeline = pipeline
        self.mirror = mirror
        self.context = context
        self.cancellation = cancellation
        self.layout = context.layout(for: pipeline)
    }

    var id: Int64 { deployment.id! }
    var store: Store { context.store }

    /// Opens `<state>/logs/<id>.log`, whose every line also goes out as an event for live followers.
    func openLog() throws {
        let events = context.events
        let id = self.id
        log = try DeploymentLog(
            path: context.logPath(deployment: id), secrets: pipeline.secrets,
            onLine: { number, line in events.publish(.log(deployment: id, number: number, line: line)) })
    }

    func perform() async -> Deployment {
        do {
            try openLog()
        } catch {
            await finish(.failed, error: "cannot open the log: \(error)")
            return deployment
        }
        await update {
            $0.status = .running
            $0.startedAt = Date()
        }
        do {
            try layout.prepare()
            let state = try await store.appState(pipeline.app)
            if let live = state.liveRelease { previousRelease = try await store.release(live) }
            if deployment.kind == .rollback, let target = deployment.targetRelease, layout.hasRelease(target) {
                try await rollBack(to: target)
            } else {
                try await deploy()
            }
        } catch let failure as DeploymentFailure {
            if failure.cancelled {
                // A shutdown is not the user's choice: the deployment was interrupted, as after a crash.
                await finish(cancellation.reason == .shutdown ? .interrupted : .cancelled, error: failure.message)
            } else {
                await finish(.failed, error: failure.message)
            }
        } catch {
            await finish(.failed, error: "\(error)")
        }
        return deployment
    }

    // MARK: - A deploy: build a new release

    private func deploy() async throws {
        let what = deployment.kind == .rollback ? "rollback (rebuilding)" : "deploy"
        log.note("==> \(pipeline.app): \(what) \(deployment.shortCommit) \(quoted(deployment.message)) (\(deployment.trigger.rawValue), deployment \(id))")
        try await prepareSteps([.build, .test, .migrate, .activate])

        try await enter(.fetch)
        let commit = try await ensureCommit()

        let directory = layout.releaseDirectory(id)
        do {
            try await enter(.checkout)
            do {
                let summary = try await mirror.export(commit, to: directory)
                log.note("==> checkout: \(summary.files) files, \(summary.bytes / 1024) KiB into releases/\(id)")
            } catch {
                throw DeploymentFailure(message: "checkout of \(deployment.shortCommit) failed: \(error)")
            }
            for phase in [StepPhase.build, .test, .migrate] {
                try await enter(DeploymentPhase(rawValue: phase.rawValue)!)
                if let failure = await runSteps(phase: phase, in: directory) { throw failure }
            }
            try await enter(.switch)
        } catch {
            // Whatever stopped it before the switch (a failed step, a cancel between steps), the release never
            // went live: it goes.
            layout.removeRelease(id)
            log.note("==> removed releases/\(id); current is unchanged")
            throw error
        }
        try switchCurrent(to: id)
        var release = Release(
            id: id, app: pipeline.app, commit: deployment.commit, message: deployment.message,
            author: deployment.author, createdAt: Date(), succeeded: false)
        try await store.save(release)
        try await store.updateAppState(pipeline.app) { [id] in $0.liveRelease = id }

        try await activateAndCheck(in: directory)
        release.succeeded = true
        try await store.save(release)
        await finish(.succeeded, error: nil)
        await pruneReleases()
    }

    /// The commit, fetching the mirror if it does not have it yet; fills in message and author.
    private func ensureCommit() async throws -> OID {
        guard let oid = OID(hex: deployment.commit) else {
            throw DeploymentFailure(message: "'\(deployment.commit)' is not a full commit sha")
        }
        if try await !mirror.contains(oid) {
            log.note("==> fetch: \(pipeline.shownRepository)")
            do {
                try await context.fetch(mirror, app: pipeline.app)
            } catch {
                throw DeploymentFailure(message: "fetch failed: \(error)")
            }
        }
        guard try await mirror.contains(oid) else {
            throw DeploymentFailure(message: "commit \(deployment.shortCommit) is not in \(pipeline.shownRepository)")
        }
        if deployment.message.isEmpty || deployment.author.isEmpty {
            let commit = try await mirror.commit(oid)
            await update {
                $0.message = commit.summary
                $0.author = commit.author.name
            }
        }
        return oid
    }

    // MARK: - A rollback to a kept release: nothing is built

    private func rollBack(to target: Int64) async throws {
        log.note("==> \(pipeline.app): rollback to release \(target) (\(deployment.shortCommit) \(quoted(deployment.message))), deployment \(id)")
        try await prepareSteps([.rollback, .activate])
        try await enter(.switch)
        try switchCurrent(to: target)
        try await store.updateAppState(pipeline.app) { $0.liveRelease = target }
        try await activateAndCheck(in: layout.releaseDirectory(target), rollbackSteps: true)
        await finish(.succeeded, error: nil)
        await pruneReleases()
    }

    // MARK: - After the switch

    /// Runs activate (after the rollback steps, for a rollback) and the health check. If either fails, switches
    /// back to the release that was live before and runs its activate steps.
    private func activateAndCheck(in directory: String, rollbackSteps: Bool = false) async throws {
        try await enter(.activate)
        var failure: DeploymentFailure?
        if rollbackSteps {
            failure = await runSteps(phase: .rollback, in: directory)
        }
        if failure == nil {
            failure = await runSteps(phase: .activate, in: directory)
        }
        if failure == nil, let check = pipeline.health {
            try await enter(.health)
            failure = await runHealthCheck(check, in: directory)
        }
        if let failure {
            // An automatic rollback that fails is final: it does not roll back again.
            if deployment.trigger == .autoRollback { throw failure }
            try await recover(from: failure)
        }
    }

    /// The automatic rollback after activate or health failed: switch back, run the old release's activate
    /// steps (as a deployment of its own, triggered `auto_rollback`), and fail this one.
    private func recover(from failure: DeploymentFailure) async throws {
        guard let previous = previousRelease, previous.id != layout.currentRelease(), layout.hasRelease(previous.id)
        else {
            log.note("==> there is no earlier release to go back to; current stays at releases/\(layout.currentRelease().map(String.init) ?? "?")")
            throw failure
        }
        log.note("==> \(failure.message); rolling back to release \(previous.id) (\(previous.shortCommit))")
        let failedRelease = layout.currentRelease()
        let rollback = try await store.insert(
            Deployment(
                app: pipeline.app, kind: .rollback, trigger: .autoRollback, ref: String(previous.id),
                commit: previous.commit, message: previous.message, author: previous.author, status: .queued,
                phase: .switch, targetRelease: previous.id))
        context.events.publish(.deployment(rollback))
        let outcome = await Deployer(context: context).runAutomaticRollback(
            rollback, pipeline: pipeline, mirror: mirror, target: previous)
        deployment.rolledBackTo = previous.id
        if let failedRelease, failedRelease != previous.id, failedRelease == id {
            layout.removeRelease(failedRelease)
            if var release = try await store.release(failedRelease) {
                release.removedAt = Date()
                try await store.save(release)
            }
            log.note("==> removed releases/\(failedRelease)")
        }
        log.note("==> rolled back to release \(previous.id) in deployment \(outcome.id ?? 0): \(outcome.status.rawValue)")
        throw failure
    }

    // MARK: - Steps

    /// Records every step this deployment may run as `pending`, so that the API shows the whole plan at once.
    private func prepareSteps(_ phases: [StepPhase]) async throws {
        var position = 0
        for phase in phases {
            for step in pipeline.steps(for: phase) {
                steps.append(try await store.insert(StepRecord(deploymentId: id, position: position, phase: phase.rawValue, name: step.name)))
                position += 1
            }
        }
        if let health = pipeline.health {
            let name: String
            switch health.probe {
            case .http(let url): name = "GET \(url)"
            case .command(let command): name = command
            }
            steps.append(try await store.insert(StepRecord(deploymentId: id, position: position, phase: "health", name: name)))
        }
    }

    /// Runs a phase's steps in order; returns the failure that stopped them, if any.
    func runSteps(phase: StepPhase, in directory: String) async -> DeploymentFailure? {
        let definitions = pipeline.steps(for: phase)
        let records = steps.indices.filter { steps[$0].phase == phase.rawValue }
        for (offset, definition) in definitions.enumerated() {
            let index = offset < records.count ? records[offset] : nil
            if cancellation.isCancelled {
                await skipRemaining()
                return DeploymentFailure(message: "cancelled", cancelled: true)
            }
            log.note("--> \(phase.rawValue): \(definition.name)")
            if let index { await markRunning(index) }
            let environment = StepRunner.environment(
                daemon: context.daemonEnvironment, pipeline: pipeline, step: definition,
                slipway: slipwayEnvironment(phase: phase.rawValue, directory: directory))
            let groupSaved = Locked<Task<Void, Never>?>(nil)
            let store = self.store
            let stepID = index.map { steps[$0].id! }
            let result = await context.runner.run(
                definition.run, in: directory, environment: environment, timeout: definition.timeout, log: log,
                cancellation: cancellation,
                started: { group in
                    guard let stepID else { return }
                    let task = Task { _ = try? await store.setProcessGroup(step: stepID, group: group.id) }
                    groupSaved.withLock { $0 = task }
                })
            await groupSaved.value?.value
            context.metrics.stepFinished(app: pipeline.app, phase: phase.rawValue, duration: result.duration)
            log.note("<-- \(phase.rawValue): \(definition.name): \(describe(result))")
            if let index { await record(result, at: index) }
            switch result.status {
            case .succeeded: continue
            case .cancelled:
                await skipRemaining()
                return DeploymentFailure(message: "cancelled during \(phase.rawValue) step '\(definition.name)'", cancelled: true)
            case .timedOut:
                await skipRemaining()
                return DeploymentFailure(message: "\(phase.rawValue) step '\(definition.name)' timed out after \(DurationText.format(definition.timeout))")
            default:
                await skipRemaining()
                return DeploymentFailure(message: "\(phase.rawValue) step '\(definition.name)' failed (exit \(result.exitCode.map(String.init) ?? "none"))")
            }
        }
        return nil
    }

    private func runHealthCheck(_ check: HealthCheck, in directory: String) async -> DeploymentFailure? {
        let index = steps.lastIndex { $0.phase == "health" }
        if let index { await markRunning(index) }
        log.note("--> health: \(index.map { steps[$0].name } ?? "check")")
        let started = Date()
        let environment = StepRunner.environment(
            daemon: context.daemonEnvironment, pipeline: pipeline, step: nil,
            slipway: slipwayEnvironment(phase: "health", directory: directory))
        let passed = await HealthProbe(check: check, runner: context.runner).run(
            in: directory, environment: environment, log: log, cancellation: cancellation)
        let result = StepResult(
            status: passed ? .succeeded : (cancellation.isCancelled ? .cancelled : .failed), exitCode: nil,
            startedAt: started, finishedAt: Date())
        log.note("<-- health: \(passed ? "passed" : "failed") after \(DurationText.elapsed(from: started, to: result.finishedAt))")
        if let index { await record(result, at: index) }
        if passed { return nil }
        if cancellation.isCancelled { return DeploymentFailure(message: "cancelled during the health check", cancelled: true) }
        return DeploymentFailure(message: "the health check failed after \(DurationText.format(check.timeout))")
    }

    private func markRunning(_ index: Int) async {
        steps[index].status = .running
        steps[index].startedAt = Date()
        await saveStep(index)
    }

    private func record(_ result: StepResult, at index: Int) async {
        steps[index].status = result.status
        steps[index].exitCode = result.exitCode
        steps[index].startedAt = result.startedAt
        steps[index].finishedAt = result.finishedAt
        steps[index].durationMs = Int(result.finishedAt.timeIntervalSince(result.startedAt) * 1000)
        steps[index].processGroup = nil
        await saveStep(index)
    }

    private func saveStep(_ index: Int) async {
        do {
            try await store.save(steps[index])
            unsavedSteps.remove(index)
        } catch {
            unsavedSteps.insert(index)
            context.logger.error("cannot save step \(steps[index].name) of deployment \(id) (will retry): \(error)")
        }
    }

    private func skipRemaining() async {
        for index in steps.indices where steps[index].status == .pending {
            steps[index].status = .skipped
            await saveStep(index)
        }
    }

    /// The `SLIPWAY_*` part of a step's environment.
    func slipwayEnvironment(phase: String, directory: String) -> [String: String] {
        [
            "SLIPWAY_APP": pipeline.app,
            "SLIPWAY_DEPLOYMENT": String(id),
            "SLIPWAY_COMMIT": deployment.commit,
            "SLIPWAY_BRANCH": pipeline.branch,
            "SLIPWAY_RELEASE_DIR": directory,
            "SLIPWAY_SHARED_DIR": layout.sharedDirectory,
            "SLIPWAY_DEPLOY_TO": layout.deployTo,
            "SLIPWAY_PREVIOUS_COMMIT": previousRelease?.commit ?? "",
            "SLIPWAY_PHASE": phase,
        ]
    }

    // MARK: - Bookkeeping

    private func enter(_ phase: DeploymentPhase) async throws {
        if cancellation.isCancelled && phase != .done {
            throw DeploymentFailure(message: "cancelled before \(phase.rawValue)", cancelled: true)
        }
        await update { $0.phase = phase }
    }

    private func switchCurrent(to release: Int64) throws {
        do {
            try layout.switchCurrent(to: release)
        } catch {
            throw DeploymentFailure(message: "switching current failed: \(error)")
        }
        log.note("==> switch: current -> releases/\(release)")
    }

    /// Saves a change to the deployment, and tells the listeners when its status or phase changed.
    func update(_ change: (inout Deployment) -> Void) async {
        let before = (deployment.status, deployment.phase)
        change(&deployment)
        do {
            try await store.save(deployment)
        } catch {
            context.logger.error("cannot save deployment \(id): \(error)")
        }
        if before != (deployment.status, deployment.phase) {
            context.events.publish(.deployment(deployment))
        }
    }

    func finish(_ status: DeploymentStatus, error: String?) async {
        // By now a failed release's directory is gone, which may be what frees the disk for these.
        for index in unsavedSteps.sorted() { await saveStep(index) }
        let finished = Date()
        let durationMs = deployment.startedAt.map { Int(finished.timeIntervalSince($0) * 1000) }
        // The last log line goes out before the status does, so that whoever follows the log and stops at the
        // final status has read every line.
        let took = DurationText.elapsed(milliseconds: durationMs ?? 0)
        log?.note("==> deployment \(id) \(status.rawValue) in \(took)" + (error.map { ": \($0)" } ?? ""))
        await update {
            $0.status = status
            $0.error = error
            if status == .succeeded { $0.phase = .done }
            $0.finishedAt = finished
            $0.durationMs = durationMs
        }
        context.metrics.deploymentFinished(deployment)
    }

    /// Keeps the newest `keep_releases` succeeded releases and the live one; removes the rest from disk.
    private func pruneReleases() async {
        guard let kept = try? await store.releases(app: pipeline.app) else { return }
        let live = layout.currentRelease()
        let keep = Set(kept.filter(\.succeeded).prefix(pipeline.keepReleases).map(\.id) + (live.map { [$0] } ?? []))
        for var release in kept where !keep.contains(release.id) && release.id != live {
            layout.removeRelease(release.id)
            release.removedAt = Date()
            try? await store.save(release)
            log.note("==> pruned releases/\(release.id)")
        }
    }

    private func describe(_ result: StepResult) -> String {
        let seconds = DurationText.elapsed(from: result.startedAt, to: result.finishedAt)
        switch result.status {
        case .succeeded: return "ok in \(seconds)"
        case .timedOut: return "timed out after \(seconds)"
        case .cancelled: return "cancelled after \(seconds)"
        default: return "failed with exit \(result.exitCode.map(String.init) ?? "none") after \(seconds)"
        }
    }

    private func quoted(_ text: String) -> String { "\"\(text)\"" }
}

extension Deployer {
    /// Runs an `auto_rollback` deployment at once, in the slot of the deployment that failed: switch to
    /// `target`, run its activate steps, check health. It does not roll back again if that fails.
    func runAutomaticRollback(_ deployment: Deployment, pipeline: Pipeline, mirror: Mirror, target: Release) async
        -> Deployment
    {
        let run = DeploymentRun(
            deployment: deployment, pipeline: pipeline, mirror: mirror, context: context, cancellation: Cancellation())
        return await run.performAutomaticRollback(to: target)
    }
}

extension DeploymentRun {
    func performAutomaticRollback(to target: Release) async -> Deployment {
        do {
            try openLog()
            await update {
                $0.status = .running
                $0.startedAt = Date()
            }
            log.note("==> \(pipeline.app): automatic rollback to release \(target.id) (\(target.shortCommit))")
            try await prepareSteps([.activate])
            try await enter(.switch)
            try switchCurrent(to: target.id)
            try await store.updateAppState(pipeline.app) { $0.liveRelease = target.id }
            try await activateAndCheck(in: layout.releaseDirectory(target.id))
            await finish(.succeeded, error: nil)
        } catch let failure as DeploymentFailure {
            await finish(.failed, error: failure.message)
        } catch {
            await finish(.failed, error: "\(error)")
        }
        return deployment
    }
}

extension Store {
    /// Remembers the process group of a running step.
    public func setProcessGroup(step id: Int64, group: Int32) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE step SET process_group = ? WHERE id = ? AND status = 'running'", arguments: [group, id])
        }
    }
}
