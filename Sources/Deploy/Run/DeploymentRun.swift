import Foundation
import GitKit
import Logging
import Pipeline
import SlipwayAPI

/// One deployment from `queued` to its end: fetch, checkout, build, test, migrate, switch, activate, health, or the
/// part of that its plan asks for.
///
/// The order of effects is what makes a crash at any moment safe: the release is complete on disk before `current`
/// moves, `current` moves in one rename, and the store is told only after the disk is right, so that on restart the
/// disk can always be believed.
///
/// Used by one task only.
final class DeploymentRun {
    private(set) var deployment: Deployment
    private let plan: DeploymentPlan
    private let pipeline: Pipeline
    private let mirror: RepositoryMirror
    private let mirrors: MirrorPool
    private let context: DeployContext
    private let control: RunCancellation
    private let cancellation: Cancellation
    private let layout: ReleaseLayout
    private let log: DeploymentLog
    private let logger: Logger
    private var steps: [StepRecord] = []
    /// Steps whose last change could not be written (a full disk); written again before the deployment ends.
    private var unsavedSteps: Set<Int> = []
    /// The release live when this deployment started, to switch back to if activate or health fails.
    private var previousRelease: Release?
    private var started = Stopwatch()
    /// The run's lease on its deployment in the store, held from the start to the end.
    private var lease: DeploymentLease?

    private init(
        deployment: Deployment, plan: DeploymentPlan, pipeline: Pipeline, mirror: RepositoryMirror,
        mirrors: MirrorPool, context: DeployContext, control: RunCancellation, cancellation: Cancellation,
        log: DeploymentLog
    ) {
        self.deployment = deployment
        self.plan = plan
        self.pipeline = pipeline
        self.mirror = mirror
        self.mirrors = mirrors
        self.context = context
        self.control = control
        self.cancellation = cancellation
        self.layout = context.layout(for: pipeline)
        self.log = log
        self.logger = context.logger.about(app: deployment.app, deployment: deployment.id)
    }

    private var id: Int64 { deployment.id }
    private var store: any DeployStore { context.store }

    /// Runs `deployment` by `plan` and returns it as it ended. It never throws: every failure becomes the
    /// deployment's status and error, and is in its log. This is the only way a deployment runs.
    static func perform(
        _ deployment: Deployment, plan: DeploymentPlan, pipeline: Pipeline, mirror: RepositoryMirror,
        mirrors: MirrorPool, context: DeployContext, control: RunCancellation,
        cancellation: Cancellation? = nil
    ) async -> Deployment {
        let events = context.events
        let id = deployment.id
        let log: DeploymentLog
        do {
            // Every line of the log also goes out as an event, for live followers.
            log = try DeploymentLog(
                path: context.logPath(deployment: id), secrets: pipeline.secrets,
                onLine: { number, line in events.publish(.log(deployment: id, number: number, line: line)) })
        } catch {
            return await failWithoutLog(
                deployment, reason: "cannot open its log: \(error.localizedDescription)", context)
        }
        let run = DeploymentRun(
            deployment: deployment, plan: plan, pipeline: pipeline, mirror: mirror, mirrors: mirrors,
            context: context, control: control, cancellation: cancellation ?? control.cancellation, log: log)
        return await run.perform()
    }

    private func perform() async -> Deployment {
        started = Stopwatch()
        do {
            lease = try await DeploymentLease.take(
                deployment: id, owner: context.node, store: store, cancellation: control, logger: logger)
        } catch {
            await finish(.failed, error: "cannot take the deployment's lease: \(error)")
            return deployment
        }
        guard let lease else {
            // Nothing is written: the deployment is the holder's.
            logger.error("another node holds the lease on deployment \(id); this node leaves it alone")
            return deployment
        }
        defer { lease.release() }
        await update {
            $0.status = .running
            $0.startedAt = self.started.date
        }
        do throws(DeploymentFailure) {
            try prepareLayout()
            previousRelease = try await recorded("read the live release") { [store] in
                guard let live = try await store.appState(self.pipeline.app).liveRelease else { return nil }
                return try await store.release(live)
            }
            switch plan {
            case .build: try await build()
            case .switchTo(let release): try await switchTo(release)
            case .automaticRollback(let target): try await rollBackAutomatically(to: target)
            }
            await finish(.succeeded, error: nil)
            if case .automaticRollback = plan {} else { await pruneReleases() }
        } catch {
            if error.cancelled {
                // A shutdown is not the user's choice: the deployment was interrupted, as after a crash.
                let interrupted = cancellation.reason == .shutdown || cancellation.reason == .leaseLost
                await finish(interrupted ? .interrupted : .cancelled, error: error.message)
            } else {
                await finish(.failed, error: error.message)
            }
        }
        return deployment
    }

    // MARK: - The plans

    /// Builds a new release and makes it live.
    private func build() async throws(DeploymentFailure) {
        let rebuilding = deployment.kind == .rollback
        log.note(
            "==> \(pipeline.app): \(rebuilding ? "rollback to" : "deploy") \(deployment.shortCommit) "
                + "\(quoted(deployment.message)) (\(deployment.trigger.rawValue), deployment \(id))"
                + (rebuilding ? ": its release is no longer on disk, so it is built again" : ""))
        try await prepareSteps([.build, .test, .migrate, .activate])

        try await enter(.fetch)
        if let base = deployment.gatedFrom { try await checkBranchIsStill(at: base) }
        let commit = try await ensureCommit()

        let directory = layout.releaseDirectory(id)
        try await enter(.checkout)
        do {
            try layout.claimRelease(id)
        } catch {
            // Not this deployment's directory (a store that lost its history next to an existing deploy_to): it
            // stays, whatever it is.
            throw DeploymentFailure(message: "cannot create releases/\(id): \(error.reason)")
        }
        var release = Release(
            id: id, app: pipeline.app, commit: deployment.commit, message: deployment.message,
            author: deployment.author, createdAt: Date(), succeeded: false)
        do throws(DeploymentFailure) {
            do {
                let summary = try await mirror.export(commit, to: directory)
                log.note("==> checkout: \(summary.files) files, \(ByteCount.text(summary.bytes)) into releases/\(id)")
            } catch {
                throw DeploymentFailure(message: "checkout of \(deployment.shortCommit) failed: \(error.message)")
            }
            try writeInfo(release)
            await ReleaseCaches(pipeline: pipeline, layout: layout, mirror: mirror, store: store, log: log)
                .restore(into: id, commit: commit, cancellation: cancellation)
            for phase in [StepPhase.build, .test, .migrate] {
                try await enter(phase.deploymentPhase)
                if let failure = await runSteps(phase: phase, in: directory) { throw failure }
            }
            try await enterSwitch()
        } catch {
            // Whatever stopped it before the switch (a failed step, a cancel between steps, a store that cannot
            // record the switch), the release never went live: it goes.
            await layout.removeRelease(id)
            log.note("==> removed releases/\(id); current is unchanged")
            throw error
        }
        do {
            try await switchCurrent(to: id)
        } catch {
            await layout.removeRelease(id)
            log.note("==> removed releases/\(id); current is unchanged")
            throw error
        }
        do {
            try await recordLive(release)
        } catch {
            // Live but not on record: back to what the store says is live, as after a failed health check.
            try await switchBack(after: error)
        }
        try await activateAndCheck(in: directory, phases: [.activate])
        release.succeeded = true
        do {
            try await recorded("record the release as succeeded") { [store, deployment] in
                try await store.save(release)
                // Git moves the branch to a gated push's commit once this succeeds: that is the head seen now.
                if deployment.isGated {
                    try await store.updateAppState(deployment.app) { $0.lastSeenHead = deployment.commit }
                }
            }
        } catch {
            // A deployment that fails does not leave its release live: back, as after a failed health check.
            try await switchBack(after: error)
        }
        do {
            try writeInfo(release)
        } catch {
            logger.error("\(error.message)")
        }
    }

    /// Makes a kept release live again: nothing is built.
    private func switchTo(_ target: Int64) async throws(DeploymentFailure) {
        log.note(
            "==> \(pipeline.app): rollback to release \(target) (\(deployment.shortCommit) "
                + "\(quoted(deployment.message))), deployment \(id)")
        try await prepareSteps([.rollback, .activate])
        try await enterSwitch()
        try await switchCurrent(to: target)
        do {
            try await recordLive(nil, id: target)
        } catch {
            try await switchBack(after: error)
        }
        try await activateAndCheck(in: layout.releaseDirectory(target), phases: [.rollback, .activate])
    }

    /// Goes back to the release that was live before a deployment whose activate or health failed.
    private func rollBackAutomatically(to target: Release) async throws(DeploymentFailure) {
        log.note("==> \(pipeline.app): automatic rollback to release \(target.id) (\(target.shortCommit))")
        try await prepareSteps([.activate])
        // The switch back happens even when a shutdown has already begun: the release it leaves has failed.
        await update { $0.phase = .switch }
        try await switchCurrent(to: target.id)
        try await recordLive(nil, id: target.id)
        try await activateAndCheck(in: layout.releaseDirectory(target.id), phases: [.activate])
    }

    // MARK: - Fetch

    /// The commit, fetching the mirror if it does not have it yet; fills in message and author.
    private func ensureCommit() async throws(DeploymentFailure) -> OID {
        guard let oid = OID(hex: deployment.commit) else {
            throw DeploymentFailure(message: "'\(deployment.commit)' is not a full commit sha")
        }
        if !(try await mirrorContains(oid)) {
            log.note("==> fetch: \(pipeline.shownRepository)")
            // A cancel or a shutdown stops the fetch too, whatever the network does.
            let stop = FetchCancellation()
            let key = cancellation.onCancel { stop.cancel() }
            defer { cancellation.removeHandler(key) }
            do {
                try await mirrors.fetch(mirror, app: pipeline.app, cancellation: stop)
            } catch {
                throw DeploymentFailure(message: error.description, cancelled: cancellation.isCancelled)
            }
        }
        guard try await mirrorContains(oid) else {
            throw DeploymentFailure(message: "commit \(deployment.shortCommit) is not in \(pipeline.shownRepository)")
        }
        if deployment.message.isEmpty || deployment.author.isEmpty {
            do {
                let commit = try await mirror.commit(oid)
                await update {
                    $0.message = commit.summary
                    $0.author = commit.author.name
                }
            } catch {
                throw DeploymentFailure(message: "cannot read commit \(deployment.shortCommit): \(error.message)")
            }
        }
        return oid
    }

    /// A gated push waits its turn while git waits for it; if the branch moved meanwhile (another push went first),
    /// git would refuse this one's ref update anyway, so nothing is deployed.
    private func checkBranchIsStill(at base: String) async throws(DeploymentFailure) {
        let head: OID?
        do {
            head = try await mirrors.remoteHead(mirror, app: pipeline.app, branch: pipeline.branch)
        } catch {
            throw DeploymentFailure(message: "cannot read \(pipeline.branch): \(error.description)")
        }
        guard (head ?? .zero).hex == base else {
            throw DeploymentFailure(
                message: "\(pipeline.branch) moved to \(head.map(\.short) ?? "nothing") while this push waited; "
                    + "fetch, merge and push again")
        }
    }

    private func mirrorContains(_ oid: OID) async throws(DeploymentFailure) -> Bool {
        do {
            return try await mirror.contains(oid)
        } catch {
            throw DeploymentFailure(message: "cannot open the mirror of \(pipeline.app): \(error.message)")
        }
    }

    // MARK: - After the switch

    /// Runs the steps of `phases` (rollback, then activate, for a rollback) and the health check. If either fails,
    /// switches back to the release that was live before, unless this is that switch back already.
    private func activateAndCheck(in directory: String, phases: [StepPhase]) async throws(DeploymentFailure) {
        try await enter(.activate)
        var failure: DeploymentFailure?
        for phase in phases where failure == nil {
            failure = await runSteps(phase: phase, in: directory)
        }
        let swap = ProcessSwap(supervisor: context.processes, pipeline: pipeline, log: log)
        var started: ProcessSupervisor.Started?
        if failure == nil {
            var environment = StepRunner.environment(
                daemon: context.daemonEnvironment, pipeline: pipeline, step: nil,
                slipway: slipwayEnvironment(phase: .activate, directory: directory))
            environment["SLIPWAY_PHASE"] = nil
            let release = layout.currentRelease() ?? id
            switch await swap.start(
                release: release, directory: directory, environment: environment, cancellation: cancellation)
            {
            case .success(let generation): started = generation
            case .failure(let error): failure = error
            }
        }
        if failure == nil, let check = pipeline.health {
            do {
                try await enter(.health)
            } catch {
                await swap.discard(started)
                throw error
            }
            failure = await runHealthCheck(check, in: directory, ports: started?.servingPorts ?? [])
        }
        failure = await swap.finish(started, failure: failure)
        guard let failure else { return }
        if case .automaticRollback = plan { throw failure }
        try await switchBack(after: failure)
    }

    /// After activate or health failed: runs the automatic rollback to the previous release, as a deployment of
    /// its own (trigger `auto_rollback`) under this one's cancellation, and fails this one. `rolled_back_to` is set
    /// only when the rollback succeeded.
    private func switchBack(after failure: DeploymentFailure) async throws(DeploymentFailure) -> Never {
        guard let previous = previousRelease, previous.id != layout.currentRelease(), layout.hasRelease(previous.id)
        else {
            let current = layout.currentRelease().map(String.init) ?? "?"
            log.note("==> there is no earlier release to go back to; current stays at releases/\(current)")
            throw failure
        }
        log.note("==> \(failure.message); rolling back to release \(previous.id) (\(previous.shortCommit))")
        let failedRelease = layout.currentRelease()
        let rollback: Deployment
        do {
            rollback = try await store.insert(
                DeploymentRequest(
                    app: pipeline.app, kind: .rollback, trigger: .autoRollback, ref: String(previous.id),
                    commit: previous.commit, message: previous.message, author: previous.author,
                    targetRelease: previous.id, phase: .switch))
        } catch {
            log.note("==> cannot record the automatic rollback: \(error)")
            try await switchBackUnrecorded(to: previous, after: failure)
        }
        context.events.publish(.deployment(rollback))
        let outcome = await Self.perform(
            rollback, plan: .automaticRollback(to: previous), pipeline: pipeline, mirror: mirror, mirrors: mirrors,
            context: context, control: control, cancellation: control.forAutomaticRollback())
        if let failedRelease, failedRelease == id, layout.currentRelease() != failedRelease {
            await layout.removeRelease(failedRelease)
            await markRemoved(failedRelease)
            log.note("==> removed releases/\(failedRelease)")
        }
        guard outcome.status == .succeeded else {
            log.note(
                "==> the automatic rollback to release \(previous.id) ended \(outcome.status.rawValue) in deployment \(rollback.id)"
            )
            throw DeploymentFailure(
                message: "\(failure.message); the automatic rollback to release \(previous.id) "
                    + "(deployment \(rollback.id)) \(outcome.status.rawValue)",
                cancelled: failure.cancelled)
        }
        deployment.rolledBackTo = previous.id
        log.note("==> rolled back to release \(previous.id) in deployment \(rollback.id)")
        throw failure
    }

    /// The switch back when the store cannot record an automatic rollback (a full state disk): `current` goes back
    /// to the release the store still names as live, so that the link and the store agree, and the failed release
    /// goes. That release's activate steps do not run again: they ran when it went live.
    private func switchBackUnrecorded(
        to previous: Release, after failure: DeploymentFailure
    ) async throws(DeploymentFailure) -> Never {
        let failedRelease = layout.currentRelease()
        do {
            try await checkLease(before: "switching back")
            try await layout.switchCurrent(to: previous.id)
        } catch {
            log.note("==> cannot switch back to releases/\(previous.id): \(error); current stays at releases/\(id)")
            throw failure
        }
        log.note("==> switch: current -> releases/\(previous.id) (back to the release on record)")
        if let failedRelease, failedRelease == id {
            await layout.removeRelease(failedRelease)
            await markRemoved(failedRelease)
            log.note("==> removed releases/\(failedRelease)")
        }
        throw DeploymentFailure(
            message: "\(failure.message); current is back at release \(previous.id)", cancelled: failure.cancelled)
    }

    // MARK: - Steps

    /// Records every step this deployment may run as `pending`, so that the API shows the whole plan at once.
    private func prepareSteps(_ phases: [StepPhase]) async throws(DeploymentFailure) {
        var plans: [StepPlan] = []
        for phase in phases {
            for step in pipeline.steps(for: phase) {
                plans.append(StepPlan(deploymentId: id, position: plans.count, phase: phase, name: step.name))
            }
        }
        if let health = pipeline.health {
            let name: String
            switch health.probe {
            case .http(let url): name = "GET \(url)"
            case .path(let path): name = "GET \(path) of each new instance"
            case .command(let command): name = command
            }
            plans.append(StepPlan(deploymentId: id, position: plans.count, phase: .health, name: name))
        }
        steps = try await recorded("record the steps") { [store] in try await store.insertSteps(plans) }
    }

    /// Runs a phase's steps in order; returns the failure that stopped them, if any.
    private func runSteps(phase: StepPhase, in directory: String) async -> DeploymentFailure? {
        let definitions = pipeline.steps(for: phase)
        let records = steps.indices.filter { steps[$0].phase == phase }
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
                slipway: slipwayEnvironment(phase: phase, directory: directory))
            let store = self.store
            let stepID = index.map { steps[$0].id }
            let result = await context.runner.run(
                definition.run, in: directory, environment: environment, timeout: definition.timeout, log: log,
                cancellation: cancellation,
                started: { group in
                    guard let stepID else { return }
                    try? await store.setProcessGroup(step: stepID, group: group.id)
                })
            await endEscapedProcesses()
            context.metrics.stepFinished(app: pipeline.app, phase: phase, duration: result.duration)
            log.note("<-- \(phase.rawValue): \(definition.name): \(describe(result))")
            if let index { await record(result, at: index) }
            switch result.status {
            case .succeeded: continue
            case .cancelled:
                await skipRemaining()
                return DeploymentFailure(
                    message: "cancelled during \(phase.rawValue) step '\(definition.name)'", cancelled: true)
            case .timedOut:
                await skipRemaining()
                return DeploymentFailure(
                    message: "\(phase.rawValue) step '\(definition.name)' timed out after "
                        + DurationText.format(definition.timeout))
            default:
                await skipRemaining()
                return DeploymentFailure(
                    message: "\(phase.rawValue) step '\(definition.name)' failed (exit "
                        + "\(result.exitCode.map(String.init) ?? "none"))")
            }
        }
        return nil
    }

    private func runHealthCheck(_ check: HealthCheck, in directory: String, ports: [Int]) async -> DeploymentFailure? {
        let index = steps.lastIndex { $0.phase == .health }
        if let index { await markRunning(index) }
        log.note("--> health: \(index.map { steps[$0].name } ?? "check")")
        let start = Stopwatch()
        let environment = StepRunner.environment(
            daemon: context.daemonEnvironment, pipeline: pipeline, step: nil,
            slipway: slipwayEnvironment(phase: .health, directory: directory))
        let outcome = await HealthProbe(check: check, runner: context.runner, instancePorts: ports).run(
            in: directory, environment: environment, log: log, cancellation: cancellation)
        await endEscapedProcesses()
        let passed = outcome.passed
        let status: StepStatus = passed ? .succeeded : (cancellation.isCancelled ? .cancelled : .failed)
        let result = StepResult(status: status, exitCode: nil, since: start)
        let ended = status == .cancelled ? "cancelled after try \(outcome.tries)" : outcome.summary
        log.note("<-- health: \(ended), in \(DurationText.elapsed(result.duration))")
        if let index { await record(result, at: index) }
        if passed { return nil }
        if cancellation.isCancelled {
            return DeploymentFailure(message: "cancelled during the health check", cancelled: true)
        }
        return DeploymentFailure(message: "the health check failed after \(DurationText.format(check.timeout))")
    }

    /// Ends what a finished step left running outside its process group (a child that called `setpgid`), found by
    /// the deployment's marks in its environment as recovery finds them. A process that started its own session
    /// (`setsid`) is a service started on purpose and stays.
    private func endEscapedProcesses() async {
        let groups = StrayProcesses.groups(deployment: id, deployTo: layout.deployTo)
        guard !groups.isEmpty else { return }
        log.note(
            "[slipway] the step left processes running outside its group; ending them (use setsid for services)")
        for group in groups { await group.terminate(grace: context.runner.killGrace) }
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
        steps[index].durationMs = result.duration.milliseconds
        steps[index].processGroup = nil
        await saveStep(index)
    }

    private func saveStep(_ index: Int) async {
        do {
            try await store.save(steps[index])
            unsavedSteps.remove(index)
        } catch {
            unsavedSteps.insert(index)
            logger.error("cannot save step \(steps[index].name) (will retry): \(error)")
        }
    }

    private func skipRemaining() async {
        for index in steps.indices where steps[index].status == .pending {
            steps[index].status = .skipped
            await saveStep(index)
        }
    }

    /// The `SLIPWAY_*` part of a step's environment.
    private func slipwayEnvironment(phase: StepPhase, directory: String) -> [String: String] {
        [
            "SLIPWAY_APP": pipeline.app,
            "SLIPWAY_DEPLOYMENT": String(id),
            "SLIPWAY_COMMIT": deployment.commit,
            "SLIPWAY_BRANCH": pipeline.branch,
            "SLIPWAY_RELEASE_DIR": directory,
            "SLIPWAY_SHARED_DIR": layout.sharedDirectory,
            "SLIPWAY_DEPLOY_TO": layout.deployTo,
            "SLIPWAY_PREVIOUS_COMMIT": previousRelease?.commit ?? "",
            "SLIPWAY_PHASE": phase.rawValue,
            "SLIPWAY_NODE": context.node,
        ]
    }

    // MARK: - The disk and the store

    private func prepareLayout() throws(DeploymentFailure) {
        do {
            try layout.prepare()
        } catch {
            throw DeploymentFailure(message: "cannot prepare \(layout.deployTo): \(error)")
        }
    }

    /// Writes what is known of the new release beside it, for a store that is lost or restored later.
    private func writeInfo(_ release: Release) throws(DeploymentFailure) {
        do {
            try layout.writeInfo(release)
        } catch {
            throw DeploymentFailure(message: "cannot record release \(release.id) on disk: \(error)")
        }
    }

    private func switchCurrent(to release: Int64) async throws(DeploymentFailure) {
        try await checkLease(before: "its switch")
        do {
            try await layout.switchCurrent(to: release)
        } catch {
            throw DeploymentFailure(message: "switching current failed: \(error)")
        }
        log.note("==> switch: current -> releases/\(release)")
    }

    /// Records that `current` now points at a release: the release itself when it is new, and the app's state.
    private func recordLive(_ release: Release?, id live: Int64? = nil) async throws(DeploymentFailure) {
        let liveID = release?.id ?? live ?? id
        try await recorded("record the switch") { [store, pipeline] in
            if let release { try await store.save(release) }
            try await store.updateAppState(pipeline.app) { $0.liveRelease = liveID }
        }
    }

    /// Runs a store operation of the deployment's own; a failure stops the deployment with `what` in its error.
    private func recorded<T>(_ what: String, _ body: () async throws -> T) async throws(DeploymentFailure) -> T {
        do {
            return try await body()
        } catch {
            logger.error("cannot \(what): \(error)")
            throw DeploymentFailure(message: "cannot \(what): \(error)")
        }
    }

    private func markRemoved(_ releaseID: Int64) async {
        do {
            if var release = try await store.release(releaseID) {
                release.removedAt = Date()
                try await store.save(release)
            }
        } catch {
            logger.error("cannot record that release \(releaseID) was removed: \(error)")
        }
    }

    // MARK: - Bookkeeping

    /// `current` moves only while the run holds its lease, with time to spare: a store that cannot say so stops the
    /// switch as a lost lease does.
    private func checkLease(before what: String) async throws(DeploymentFailure) {
        guard let lease else { return }
        let held: Bool
        do {
            held = try await lease.isHeld(margin: DeploymentLease.margin)
        } catch {
            throw DeploymentFailure(message: "cannot check the deployment's lease before \(what): \(error)")
        }
        guard held else {
            throw DeploymentFailure(message: "the deployment's lease is lost, or about to run out, before \(what)")
        }
    }

    /// The switch is entered only once the store has recorded it: a deployment that cannot be recorded (a full
    /// state disk) does not switch.
    private func enterSwitch() async throws(DeploymentFailure) {
        if cancellation.isCancelled { throw DeploymentFailure(message: "cancelled before switch", cancelled: true) }
        var switching = deployment
        switching.phase = .switch
        try await recorded("record the deployment before its switch") { [store, switching] in
            try await store.save(switching)
        }
        deployment = switching
        context.events.publish(.deployment(deployment))
    }

    private func enter(_ phase: DeploymentPhase) async throws(DeploymentFailure) {
        if cancellation.isCancelled && phase != .done {
            throw DeploymentFailure(message: "cancelled before \(phase.rawValue)", cancelled: true)
        }
        await update { $0.phase = phase }
    }

    /// Saves a change to the deployment, and tells the listeners when its status or phase changed. A failed save is
    /// tried again `retries` times, a second apart: the outcome is worth waiting for (a failed release's directory,
    /// just removed, may have freed the disk), and one that is never written shows as interrupted after a restart.
    /// Returns whether the change was written.
    @discardableResult
    private func update(retries: Int = 0, _ change: (inout Deployment) -> Void) async -> Bool {
        let before = (deployment.status, deployment.phase)
        change(&deployment)
        var saved = false
        for attempt in 0...retries where !saved {
            do {
                try await store.save(deployment)
                saved = true
            } catch {
                logger.error("cannot save the deployment: \(error)")
                if attempt < retries { try? await Task.sleep(for: .seconds(1)) }
            }
        }
        if before != (deployment.status, deployment.phase) {
            context.events.publish(.deployment(deployment))
        }
        return saved
    }

    private func finish(_ status: DeploymentStatus, error: String?) async {
        // A lost lease is not this run's to end: whoever found it expired marked the deployment interrupted. A
        // store that cannot say goes on below, where the outcome is kept until the store can take it.
        var lost = cancellation.isCancelled && cancellation.reason == .leaseLost
        if !lost, let lease, (try? await lease.isHeld()) == false { lost = true }
        if lost {
            log.note(
                "==> deployment \(id) stopped" + (error.map { ": \($0)" } ?? "")
                    + "; it lost its lease and records nothing more")
            logger.error("lost the lease on deployment \(id); its outcome (\(status.rawValue)) is not recorded")
            return
        }
        // By now a failed release's directory is gone, which may be what frees the disk for these.
        for index in unsavedSteps.sorted() { await saveStep(index) }
        let durationMs = started.elapsed.milliseconds
        // The last log line goes out before the status does, so that whoever follows the log and stops at the
        // final status has read every line.
        let took = DurationText.elapsed(milliseconds: durationMs)
        log.note("==> deployment \(id) \(status.rawValue) in \(took)" + (error.map { ": \($0)" } ?? ""))
        let saved = await update(retries: 5) {
            $0.status = status
            $0.error = error
            if status == .succeeded { $0.phase = .done }
            $0.finishedAt = Date()
            $0.durationMs = durationMs
        }
        // What still cannot be written is written later, once the store can (UnsavedRecordsService).
        for index in unsavedSteps.sorted() { await context.unsaved.keep(steps[index]) }
        if !saved {
            logger.error("cannot record that the deployment \(status.rawValue); will try again until it can")
            await context.unsaved.keep(deployment)
        }
        context.metrics.deploymentFinished(deployment)
    }

    /// Fails a deployment before it starts, with `reason` as its error and, when its log can be opened, in its
    /// log, so that whoever follows it (a pusher) reads why.
    static func refuse(_ deployment: Deployment, because reason: String, context: DeployContext) async -> Deployment {
        let events = context.events
        let id = deployment.id
        if let log = try? DeploymentLog(
            path: context.logPath(deployment: id),
            onLine: { number, line in events.publish(.log(deployment: id, number: number, line: line)) })
        {
            for line in reason.split(separator: "\n", omittingEmptySubsequences: false) { log.note("==> \(line)") }
            log.note("==> deployment \(id) failed: nothing was changed")
        }
        return await failWithoutLog(deployment, reason: reason, context)
    }

    /// A deployment whose log cannot even be opened fails at once.
    private static func failWithoutLog(
        _ deployment: Deployment, reason: String, _ context: DeployContext
    ) async
        -> Deployment
    {
        var failed = deployment
        let now = Date()
        failed.status = .failed
        failed.error = reason
        failed.startedAt = failed.startedAt ?? now
        failed.finishedAt = now
        failed.durationMs = 0
        do {
            try await context.store.save(failed)
        } catch {
            context.logger.about(app: deployment.app, deployment: deployment.id).error("cannot save: \(error)")
        }
        context.events.publish(.deployment(failed))
        context.metrics.deploymentFinished(failed)
        return failed
    }

    /// Keeps the newest `keep_releases` succeeded releases and the live one; removes the rest from disk.
    private func pruneReleases() async {
        guard let kept = try? await store.releases(app: pipeline.app) else { return }
        let live = layout.currentRelease()
        let keep = Set(kept.filter(\.succeeded).prefix(pipeline.keepReleases).map(\.id) + (live.map { [$0] } ?? []))
        for release in kept where !keep.contains(release.id) {
            await layout.removeRelease(release.id)
            await markRemoved(release.id)
            log.note("==> pruned releases/\(release.id)")
        }
    }

    private func describe(_ result: StepResult) -> String {
        let took = DurationText.elapsed(result.duration)
        switch result.status {
        case .succeeded: return "ok in \(took)"
        case .timedOut: return "timed out after \(took)"
        case .cancelled: return "cancelled after \(took)"
        default: return "failed with exit \(result.exitCode.map(String.init) ?? "none") after \(took)"
        }
    }

    private func quoted(_ text: String) -> String { "\"\(text)\"" }
}
