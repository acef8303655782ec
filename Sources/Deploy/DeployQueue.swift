import Foundation
import Logging
import Pipeline
import ServiceLifecycle

/// Runs deployments: one at a time per app, up to `jobs` apps side by side.
///
/// A newer deployment for an app supersedes every one still waiting for that app (in the store, in one
/// transaction), so each app has at most one deployment waiting; a running deployment is never stopped by it.
public actor DeployQueue: Service {
    private struct Running {
        let id: Int64
        let cancellation: Cancellation
    }

    private let context: DeployContext
    private let registry: AppRegistry
    private let mirrors: Mirrors
    public nonisolated let jobs: Int
    /// How long running deployments get to finish on shutdown before they are stopped and marked interrupted.
    public nonisolated let shutdownGrace: Duration
    private var waiting: [Int64: Deployment] = [:]
    private var running: [String: Running] = [:]
    private var accepting = true
    private var started = false
    private let submissions = AppLocks()

    public init(
        context: DeployContext, registry: AppRegistry, mirrors: Mirrors, jobs: Int = 2,
        shutdownGrace: Duration = .seconds(30)
    ) {
        self.context = context
        self.registry = registry
        self.mirrors = mirrors
        self.jobs = max(1, jobs)
        self.shutdownGrace = shutdownGrace
    }

    /// Queues a deployment and returns it as stored, with its id.
    ///
    /// Submissions for one app take turns, since each one's store write decides what the one before it
    /// superseded. What waits for the app leaves the queue before that write, so none of it can start while the
    /// store writes; the one already handed to its run is spared even if the store still says `queued`.
    public func submit(_ deployment: Deployment) async throws -> Deployment {
        await submissions.acquire(deployment.app)
        defer { submissions.release(deployment.app) }
        let displaced = waiting.values.filter { $0.app == deployment.app }
        for old in displaced { waiting.removeValue(forKey: old.id!) }
        let queued: Deployment
        let superseded: [Deployment]
        do {
            (queued, superseded) = try await context.store.enqueue(deployment, sparing: running[deployment.app]?.id)
        } catch {
            for old in displaced { waiting[old.id!] = old }
            throw error
        }
        for old in superseded {
            context.events.publish(.deployment(old))
            context.metrics.deploymentFinished(old)
            context.logger.info("deployment \(old.id!) of \(old.app) superseded by \(queued.id!)")
        }
        waiting[queued.id!] = queued
        context.events.publish(.deployment(queued))
        reportDepth(queued.app)
        pump()
        return queued
    }

    /// Cancels a deployment: a waiting one at once, a running one by stopping its step.
    public func cancel(_ id: Int64) async throws -> Deployment {
        // A waiting one is cancelled in its app's turn, so that a submission superseding it cannot cross the write.
        if let app = waiting[id]?.app {
            await submissions.acquire(app)
            defer { submissions.release(app) }
            if let cancelled = try await cancelWaiting(id) { return cancelled }
        }
        guard let deployment = try await context.store.deployment(id) else {
            throw DeployError.notFound("there is no deployment \(id)")
        }
        if let run = running[deployment.app], run.id == id {
            run.cancellation.cancel()
            return deployment
        }
        throw DeployError.conflict("deployment \(id) has already finished (\(deployment.status.rawValue))")
    }

    /// Nil when it no longer waits: superseded, or started, while this waited for the app's turn.
    private func cancelWaiting(_ id: Int64) async throws -> Deployment? {
        guard var queued = waiting.removeValue(forKey: id) else { return nil }
        queued.status = .cancelled
        queued.finishedAt = Date()
        queued.error = "cancelled while queued"
        try await context.store.save(queued)
        context.events.publish(.deployment(queued))
        context.metrics.deploymentFinished(queued)
        reportDepth(queued.app)
        return queued
    }

    /// The id of the deployment running for `app`, if any.
    public func runningDeployment(app: String) -> Int64? { running[app]?.id }

    /// Starts the deployments that were waiting when the daemon last stopped. Call once, after recovery.
    public func resume() async throws {
        guard !started else { return }
        started = true
        for deployment in try await context.store.deployments(status: .queued) {
            waiting[deployment.id!] = deployment
        }
        pump()
    }

    // MARK: - Service

    public func run() async throws {
        try await resume()
        // Run until the service group shuts down gracefully.
        try? await gracefulShutdown()
        await shutDown()
        await context.store.flushDeliveries()
    }

    /// Stops taking work; gives running deployments `shutdownGrace` to finish, then stops them.
    public func shutDown() async {
        accepting = false
        guard !running.isEmpty else { return }
        context.logger.info("waiting up to \(DurationText.format(shutdownGrace)) for \(running.count) running deployment(s)")
        let finished = await waitForRunning(upTo: shutdownGrace)
        if !finished {
            for run in running.values { run.cancellation.cancel(.shutdown) }
            _ = await waitForRunning(upTo: context.runner.killGrace + .seconds(5))
        }
    }

    private func waitForRunning(upTo limit: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while !running.isEmpty, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return running.isEmpty
    }

    // MARK: - Scheduling

    private func pump() {
        guard accepting else { return }
        while running.count < jobs,
            let next = waiting.values.filter({ running[$0.app] == nil }).min(by: { $0.id! < $1.id! })
        {
            waiting.removeValue(forKey: next.id!)
            let cancellation = Cancellation()
            running[next.app] = Running(id: next.id!, cancellation: cancellation)
            reportDepth(next.app)
            Task { [context, registry, mirrors] in
                let finished = await Self.execute(
                    next, cancellation: cancellation, context: context, registry: registry, mirrors: mirrors)
                self.finished(finished)
            }
        }
    }

    private static func execute(
        _ deployment: Deployment, cancellation: Cancellation, context: DeployContext, registry: AppRegistry,
        mirrors: Mirrors
    ) async -> Deployment {
        do {
            guard let pipeline = registry.app(deployment.app)?.pipeline else {
                throw DeployError.configuration("\(deployment.app) has no valid pipeline file")
            }
            let mirror = try await mirrors.mirror(for: pipeline)
            return await Deployer(context: context).run(deployment, pipeline: pipeline, mirror: mirror, cancellation: cancellation)
        } catch {
            var failed = deployment
            failed.status = .failed
            failed.error = "\(error)"
            failed.finishedAt = Date()
            try? await context.store.save(failed)
            context.events.publish(.deployment(failed))
            return failed
        }
    }

    private func finished(_ deployment: Deployment) {
        if running[deployment.app]?.id == deployment.id {
            running.removeValue(forKey: deployment.app)
        }
        reportDepth(deployment.app)
        pump()
    }

    private func reportDepth(_ app: String) {
        context.metrics.queueDepth(app: app, depth: waiting.values.filter { $0.app == app }.count)
    }
}
