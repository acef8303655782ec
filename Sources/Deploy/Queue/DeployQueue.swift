import Foundation
import Logging
import Pipeline
import ServiceLifecycle

/// Runs deployments: one at a time per app, up to `jobs` apps side by side, each as a child task of the queue's
/// own task group, so that a shutdown reaches every one of them.
///
/// A newer deployment for an app supersedes every one still waiting for that app (in the store, in one
/// transaction), so each app has at most one deployment waiting; a running deployment is never stopped by it.
actor DeployQueue: Service {
    private struct Running {
        let id: Int64
        let commit: String
        let control: RunCancellation
    }

    private let context: DeployContext
    private let registry: AppRegistry
    private let mirrors: MirrorPool
    nonisolated let jobs: Int
    /// How long running deployments get to finish on shutdown before they are stopped and marked interrupted.
    nonisolated let shutdownGrace: Duration
    private var waiting: [Int64: Deployment] = [:]
    private var running: [String: Running] = [:]
    private var accepting = true
    private var resumed = false
    private let submissions = AppLocks()
    /// Deployments handed from the scheduler to `run()`, which starts each as a child task.
    private let starts: AsyncStream<(Deployment, RunCancellation)>
    private let startContinuation: AsyncStream<(Deployment, RunCancellation)>.Continuation
    private let idle = IdleSignal()

    init(
        context: DeployContext, registry: AppRegistry, mirrors: MirrorPool, jobs: Int = 2,
        shutdownGrace: Duration = .seconds(30)
    ) {
        self.context = context
        self.registry = registry
        self.mirrors = mirrors
        self.jobs = max(1, jobs)
        self.shutdownGrace = shutdownGrace
        (starts, startContinuation) = AsyncStream.makeStream()
    }

    /// Queues a deployment and returns it as stored, with its id.
    ///
    /// Submissions for one app take turns, since each one's store write decides what the one before it
    /// superseded. What waits for the app leaves the queue before that write, so none of it can start while the
    /// store writes; the one already handed to its run is spared even if the store still says `queued`.
    func submit(_ request: DeploymentRequest) async throws(DeployError) -> Deployment {
        await submissions.acquire(request.app)
        defer { submissions.release(request.app) }
        let displaced = waiting.values.filter { $0.app == request.app }
        for old in displaced { waiting.removeValue(forKey: old.id) }
        let queued: Deployment
        let superseded: [Deployment]
        do {
            (queued, superseded) = try await context.store.enqueue(request, sparing: running[request.app]?.id)
        } catch {
            for old in displaced { waiting[old.id] = old }
            throw .store(error)
        }
        for old in superseded {
            context.events.publish(.deployment(old))
            context.metrics.deploymentFinished(old)
            context.logger.about(app: old.app, deployment: old.id).info("superseded by deployment \(queued.id)")
        }
        waiting[queued.id] = queued
        context.events.publish(.deployment(queued))
        reportDepth(queued.app)
        pump()
        return queued
    }

    /// Cancels a deployment: a waiting one at once, a running one by stopping its step.
    func cancel(_ id: Int64) async throws(DeployError) -> Deployment {
        // A waiting one is cancelled in its app's turn, so that a submission superseding it cannot cross the write.
        if let app = waiting[id]?.app {
            await submissions.acquire(app)
            defer { submissions.release(app) }
            if let cancelled = try await cancelWaiting(id) { return cancelled }
        }
        let found: Deployment?
        do {
            found = try await context.store.deployment(id)
        } catch {
            throw .store(error)
        }
        guard let deployment = found else { throw .notFound("there is no deployment \(id)") }
        // An automatic rollback runs in the slot of the deployment that failed, under its cancellation.
        if let run = running[deployment.app],
            run.id == id || (deployment.trigger == .autoRollback && deployment.status == .running)
        {
            run.control.cancel()
            return deployment
        }
        throw .conflict("deployment \(id) has already finished (\(deployment.status.rawValue))")
    }

    /// Nil when it no longer waits: superseded, or started, while this waited for the app's turn.
    private func cancelWaiting(_ id: Int64) async throws(DeployError) -> Deployment? {
        guard var queued = waiting.removeValue(forKey: id) else { return nil }
        queued.status = .cancelled
        queued.finishedAt = Date()
        queued.error = "cancelled while queued"
        do {
            try await context.store.save(queued)
        } catch {
            waiting[id] = queued
            throw .store(error)
        }
        context.events.publish(.deployment(queued))
        context.metrics.deploymentFinished(queued)
        reportDepth(queued.app)
        return queued
    }

    /// The id of the deployment running for `app`, if any.
    func runningDeployment(app: String) -> Int64? { running[app]?.id }

    /// True when a deployment of `commit` runs or waits for `app`: a notice of that head is then not news.
    func hasPending(app: String, commit: String) -> Bool {
        running[app]?.commit == commit || waiting.values.contains { $0.app == app && $0.commit == commit }
    }

    /// Takes up the deployments that were waiting when the daemon last stopped; they start once `run()` runs.
    /// Called once, after recovery and before anything can be submitted.
    func resume() async throws(DeployError) {
        guard !resumed else { return }
        resumed = true
        let queued: [Deployment]
        do {
            queued = try await context.store.deployments(status: .queued)
        } catch {
            throw .store(error)
        }
        let known = Set(waiting.keys).union(running.values.map(\.id))
        for deployment in queued where !known.contains(deployment.id) {
            waiting[deployment.id] = deployment
        }
        pump()
    }

    // MARK: - Service

    func run() async throws {
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await (deployment, control) in starts {
                    group.addTask {
                        let finished = await self.execute(deployment, control: control)
                        await self.finished(finished)
                    }
                }
            } onGracefulShutdown: { [startContinuation] in
                startContinuation.finish()
            }
            await drain()
            // Whatever is still running now ignored SIGTERM and SIGKILL's grace; the task group ends it.
            group.cancelAll()
        }
        await context.store.flushDeliveries()
    }

    /// Stops taking work; gives running deployments `shutdownGrace` to finish, then stops them.
    private func drain() async {
        accepting = false
        guard !running.isEmpty else {
            context.logger.notice("stopping: no deployment is running; queued ones run after the next start")
            return
        }
        let ids = running.values.map { String($0.id) }.sorted().joined(separator: ", ")
        let grace = DurationText.format(shutdownGrace)
        context.logger.notice("stopping: no new deployment starts; waiting up to \(grace) for deployment \(ids)")
        if await idle.wait(upTo: shutdownGrace) { return }
        context.logger.notice("stopping deployment \(ids) after \(grace); it will show as interrupted")
        for run in running.values { run.control.cancel(.shutdown) }
        _ = await idle.wait(upTo: context.runner.killGrace + .seconds(5))
    }

    // MARK: - Scheduling

    private func pump() {
        guard accepting else { return }
        while running.count < jobs,
            let next = waiting.values.filter({ running[$0.app] == nil }).min(by: { $0.id < $1.id })
        {
            let control = RunCancellation()
            guard case .enqueued = startContinuation.yield((next, control)) else {
                accepting = false  // shutting down: it stays queued in the store and runs after the next start
                return
            }
            waiting.removeValue(forKey: next.id)
            running[next.app] = Running(id: next.id, commit: next.commit, control: control)
            idle.update(isIdle: false)
            reportDepth(next.app)
        }
    }

    private func execute(_ deployment: Deployment, control: RunCancellation) async -> Deployment {
        guard let definition = registry.app(deployment.app), let pipeline = definition.pipeline else {
            return await DeploymentRun.refuse(
                deployment, because: "\(deployment.app) has no valid pipeline file", context: context)
        }
        if let problem = definition.configError {
            // Not deployed with an older version of the file: the pusher sees why.
            return await DeploymentRun.refuse(
                deployment, because: "\(deployment.app)'s pipeline file is invalid:\n\(problem)", context: context)
        }
        return await DeploymentRun.perform(
            deployment, plan: .forQueued(deployment, layout: context.layout(for: pipeline)), pipeline: pipeline,
            mirror: mirrors.mirror(for: pipeline), mirrors: mirrors, context: context, control: control)
    }

    private func finished(_ deployment: Deployment) {
        if running[deployment.app]?.id == deployment.id {
            running.removeValue(forKey: deployment.app)
        }
        reportDepth(deployment.app)
        idle.update(isIdle: running.isEmpty)
        pump()
        if running.isEmpty { MemoryTrim.soon() }
    }

    private func reportDepth(_ app: String) {
        context.metrics.queueDepth(app: app, depth: waiting.values.filter { $0.app == app }.count)
    }
}

/// Whether the queue has nothing running, and a way to wait for that without polling.
private final class IdleSignal: Sendable {
    private struct State {
        var isIdle = true
        var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Locked(State())

    func update(isIdle: Bool) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isIdle = isIdle
            guard isIdle else { return [] }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    /// True when the queue is idle, or becomes idle within `limit`.
    func wait(upTo limit: Duration) async -> Bool {
        if state.value.isIdle { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.untilIdle()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    private func untilIdle() async {
        let key = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.isIdle || Task.isCancelled { return true }
                    state.waiters[key] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: key) }?.resume()
        }
    }
}
