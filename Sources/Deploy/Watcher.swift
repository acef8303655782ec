import Foundation
import GitKit
import Logging
import Pipeline

/// Turns notices that a branch moved (the git hook, a forge webhook, a poll) into deployments.
///
/// Every notice goes the same way, one at a time per app: fetch the mirror, read the branch head, and deploy it
/// only if no notice has seen that head before and a changed file matches the app's `paths:`. Remembering the
/// last head seen, rather than comparing with what is live, is what makes a rollback stick: the head the app
/// rolled back from is not deployed again just because it is still the head.
public struct Watcher: Sendable {
    let context: DeployContext
    let registry: AppRegistry
    let mirrors: Mirrors
    let queue: DeployQueue
    let locks = AppLocks()
    /// Each app's last fetch: when it started and the branch head it found. A notice that waited for the app's
    /// lock while a fetch started after it arrived needs no fetch of its own: that fetch already saw everything the
    /// notice is about. A burst of deliveries thus costs two fetches, not one each.
    let fetchedHeads = Locked([String: FetchedHead]())
    /// The last head a notice saw, per app, as in the store (which only the watcher writes), to spare a read.
    let seenHeads = Locked([String: SeenHead]())

    struct FetchedHead: Sendable {
        let started: ContinuousClock.Instant
        let branch: String
        let head: OID?
    }

    struct SeenHead: Sendable {
        let value: String?
    }

    public init(context: DeployContext, registry: AppRegistry, mirrors: Mirrors, queue: DeployQueue) {
        self.context = context
        self.registry = registry
        self.mirrors = mirrors
        self.queue = queue
    }

    /// A push to `ref` of `app`'s repository. Pushes to other branches, and branch deletions, deploy nothing.
    public func pushed(
        app: String, ref: String, before: String? = nil, after: String, trigger: DeploymentTrigger = .push
    ) async throws -> [Deployment] {
        let pipeline = try await validPipeline(app)
        guard ref == "refs/heads/\(pipeline.branch)", OID(hex: after)?.isZero != true else { return [] }
        let arrived = ContinuousClock.now
        return try await locks.withLock(app) {
            try await deployHeadIfNew(
                pipeline, trigger: trigger, ref: ref, before: before.flatMap(OID.init(hex:)), after: OID(hex: after),
                arrived: arrived)
        }
    }

    /// A forge's push event, for the apps it reached (those that follow its repository and whose secret signed it):
    /// each one whose branch is `ref` is noticed.
    public func forgePush(_ pipelines: [Pipeline], ref: String, after: String) async -> (matched: [String], deployments: [Deployment]) {
        var matched: [String] = []
        var deployments: [Deployment] = []
        for pipeline in pipelines where ref == "refs/heads/\(pipeline.branch)" {
            matched.append(pipeline.app)
            do {
                deployments += try await pushed(app: pipeline.app, ref: ref, after: after, trigger: .webhook)
            } catch {
                context.logger.error("webhook for \(pipeline.app): \(error)")
            }
        }
        return (matched, deployments)
    }

    /// A poll: list the remote's heads first, and fetch only if the branch moved.
    public func poll(app: String) async throws -> [Deployment] {
        let pipeline = try await validPipeline(app)
        return try await locks.withLock(app) {
            let mirror = try await mirrors.mirror(for: pipeline)
            let remote = try await mirror.remoteHead(branch: pipeline.branch)
            let seen = try await lastSeenHead(app)
            guard let remote, remote.hex != seen else { return [] }
            return try await deployHeadIfNew(
                pipeline, trigger: .poll, ref: "refs/heads/\(pipeline.branch)", before: nil, after: nil, arrived: .now)
        }
    }

    /// A deploy asked for by hand: any branch, tag or sha, fetched first. It ignores `paths:` and what was seen.
    // Swift 6.3's optimiser crashes (signal 11, splitting this coroutine) in release builds; it is not hot code.
    @_optimize(none)
    public func deploy(app: String, ref: String?) async throws -> Deployment {
        let pipeline = try await validPipeline(app)
        let revision = ref.map { $0.isEmpty ? pipeline.branch : $0 } ?? pipeline.branch
        let mirror = try await mirrors.mirror(for: pipeline)
        try await fetch(mirror, app: app)
        guard let oid = try? await mirror.resolve(revision) else {
            throw DeployError.notFound("no branch, tag or commit '\(revision)' in \(app)'s repository")
        }
        let commit = try await mirror.commit(oid)
        return try await queue.submit(
            Deployment(
                app: app, trigger: .manual, ref: revision, commit: oid.hex, message: commit.summary,
                author: commit.author.name))
    }

    /// A rollback asked for by hand (or by the dashboard).
    public func rollback(app: String, to target: RollbackTarget?) async throws -> Deployment {
        let pipeline = try await validPipeline(app)
        let mirror = try await mirrors.mirror(for: pipeline)
        let planned = try await RollbackPlanner(context: context).plan(app: pipeline, target: target, mirror: mirror)
        return try await queue.submit(planned)
    }

    // MARK: -

    private func validPipeline(_ app: String) async throws -> Pipeline {
        guard let definition = registry.app(app) else { throw DeployError.unknownApp(app) }
        guard let pipeline = definition.pipeline else {
            throw DeployError.configuration("\(app)'s pipeline file is invalid:\n\(definition.configError ?? "")")
        }
        return pipeline
    }

    private func fetch(_ mirror: Mirror, app: String) async throws {
        do {
            try await context.fetch(mirror, app: app)
        } catch {
            throw DeployError.unavailable("fetching \(app)'s repository failed: \(error)")
        }
    }

    private func lastSeenHead(_ app: String) async throws -> String? {
        if let cached = seenHeads.withLock({ $0[app] }) { return cached.value }
        let stored = try await context.store.appState(app).lastSeenHead
        seenHeads.withLock { $0[app] = SeenHead(value: stored) }
        return stored
    }

    /// Fetch, then deploy the branch head if no notice has seen it and `paths:` wants it. Call with the app's lock.
    private func deployHeadIfNew(
        _ pipeline: Pipeline, trigger: DeploymentTrigger, ref: String, before: OID?, after: OID?,
        arrived: ContinuousClock.Instant
    ) async throws -> [Deployment] {
        let mirror = try await mirrors.mirror(for: pipeline)
        let found: OID?
        // No fetch is needed when one started after this notice arrived, or when the commit the notice names is
        // the head the last fetch found (a repeated or redelivered notice).
        if let fetched = fetchedHeads.withLock({ $0[pipeline.app] }), fetched.branch == pipeline.branch,
            fetched.started > arrived || (after != nil && fetched.head == after)
        {
            found = fetched.head
        } else {
            let started = ContinuousClock.now
            try await fetch(mirror, app: pipeline.app)
            found = try await mirror.head(branch: pipeline.branch)
            // Only a fetch that worked can stand in for the notices that waited on it.
            fetchedHeads.withLock { $0[pipeline.app] = FetchedHead(started: started, branch: pipeline.branch, head: found) }
        }
        guard let head = found else { return [] }
        let seen = try await lastSeenHead(pipeline.app)
        guard head.hex != seen else {
            context.logger.debug("\(pipeline.app): head \(head.short) was seen before; nothing to deploy")
            return []
        }
        var wanted = true
        if !pipeline.paths.isEmpty {
            let since = seen.flatMap(OID.init(hex:)) ?? before
            let changed = try await mirror.changedPaths(from: since, to: head)
            wanted = pipeline.wantsDeploy(forChangedPaths: changed)
            if !wanted {
                context.logger.info("\(pipeline.app): \(head.short) changes no file under paths: \(pipeline.paths); not deploying")
            }
        }
        try await context.store.updateAppState(pipeline.app) { $0.lastSeenHead = head.hex }
        seenHeads.withLock { $0[pipeline.app] = SeenHead(value: head.hex) }
        guard wanted else { return [] }
        let commit = try await mirror.commit(head)
        let deployment = try await queue.submit(
            Deployment(
                app: pipeline.app, trigger: trigger, ref: ref, commit: head.hex, message: commit.summary,
                author: commit.author.name))
        return [deployment]
    }
}
