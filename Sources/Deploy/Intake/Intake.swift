import Foundation
import GitKit
import Logging
import Pipeline
import SlipwayAPI

/// Turns every request to deploy into deployments: notices that a branch moved (the git hook, a forge webhook, a
/// poll), and deploys and rollbacks asked for by hand.
///
/// Every notice goes the same way, one at a time per app: fetch the mirror, read the branch head, and deploy it only
/// if no notice has seen that head before and a changed file matches the app's `paths:`. Remembering the last head
/// seen, rather than comparing with what is live, is what makes a rollback stick: the head the app rolled back from
/// is not deployed again just because it is still the head.
struct Intake: Sendable {
    let context: DeployContext
    let registry: AppRegistry
    let mirrors: MirrorPool
    let queue: DeployQueue
    /// The secret for forge deliveries to apps that have no `webhook_secret` of their own.
    let webhookSecret: String?
    let locks = AppLocks()
    /// Each app's last fetch: when it started and the branch head it found. A notice that waited for the app's lock
    /// while a fetch started after it arrived needs no fetch of its own: that fetch already saw everything the
    /// notice is about. A burst of deliveries thus costs two fetches, not one each.
    let fetchedHeads = Locked([String: FetchedHead]())
    /// The last head a notice saw, per app, as in the store (which only the intake writes), to spare a read.
    let seenHeads = Locked([String: SeenHead]())

    struct FetchedHead: Sendable {
        let started: ContinuousClock.Instant
        let branch: String
        let head: OID?
    }

    struct SeenHead: Sendable {
        let value: String?
    }

    /// A push to `notice.ref`, told at `arrived`. Pushes to other branches, and branch deletions, deploy nothing.
    func pushed(
        _ notice: PushNotice, trigger: DeploymentTrigger = .push, arrived: ContinuousClock.Instant = .now
    ) async throws(DeployError) -> [Deployment] {
        let pipeline = try validPipeline(notice.app)
        guard notice.ref == "refs/heads/\(pipeline.branch)", OID(hex: notice.after)?.isZero != true else { return [] }
        if let quarantine = notice.quarantine { return try await gated(notice, quarantine: quarantine, pipeline) }
        await locks.acquire(notice.app)
        defer { locks.release(notice.app) }
        let after = OID(hex: notice.after)
        let started = try await deployHeadIfNew(
            pipeline, trigger: trigger, ref: notice.ref, before: notice.before.flatMap(OID.init(hex:)),
            after: after, arrived: arrived)
        // The git hook's pusher follows what the answer names; a forge reads nothing of it.
        guard started.isEmpty, trigger == .push, let after else { return started }
        return try await deploymentOfPushed(after, app: notice.app).map { [$0] } ?? []
    }

    /// The deployment of a pushed commit that something else saw first: a poll, or an earlier notice of the same
    /// push. Answering the hook with it, rather than with nothing, lets the pusher follow it and hear how it ends.
    /// Only the app's newest deployment counts: a commit rolled back from since is not what is being deployed.
    private func deploymentOfPushed(_ commit: OID, app: String) async throws(DeployError) -> Deployment? {
        let newest: Deployment?
        do {
            newest = try await context.store.deployments(app: app, limit: 1).first
        } catch {
            throw .store(error)
        }
        guard let newest, newest.commit == commit.hex else { return nil }
        return newest
    }

    /// A gated push, which git accepts only if its deployment succeeds: the pushed commit is still in git's
    /// quarantine, so its objects are copied into the mirror from there. It is deployed whatever was seen before
    /// (the pusher waits for this answer), never superseded, and records the head only once it has succeeded.
    private func gated(
        _ notice: PushNotice, quarantine: [String], _ pipeline: Pipeline
    ) async throws(DeployError)
        -> [Deployment]
    {
        guard case .local(let root) = RemoteLocation(pipeline.repository) else {
            throw .invalid("\(pipeline.app) follows \(pipeline.shownRepository), not a repository on this machine")
        }
        // The directories come from the request: only the repository's own quarantine may be read.
        let objects = URL(fileURLWithPath: root).appendingPathComponent("objects").standardizedFileURL.path + "/"
        for directory in quarantine where !URL(fileURLWithPath: directory).standardizedFileURL.path.hasPrefix(objects) {
            throw .invalid("'\(directory)' is not an object directory of \(pipeline.app)'s repository")
        }
        guard let after = OID(hex: notice.after) else { throw .invalid("'\(notice.after)' is not a commit sha") }
        await locks.acquire(notice.app)
        defer { locks.release(notice.app) }
        let mirror = mirrors.mirror(for: pipeline)
        try await mirrors.fetch(mirror, app: pipeline.app)
        try await read(mirror, pipeline.app) { try await $0.importObjects(from: quarantine) }
        let before = notice.before.flatMap(OID.init(hex:)).flatMap { $0.isZero ? nil : $0 }
        if !pipeline.paths.isEmpty {
            var since = before
            if since == nil { since = try await liveCommit(pipeline.app) }
            let changed = try await read(mirror, pipeline.app) { [since] in
                try await $0.changedPaths(from: since, to: after)
            }
            guard pipeline.wantsDeploy(forChangedPaths: changed) else { return [] }
        }
        let commit = try await read(mirror, pipeline.app) { try await $0.commit(after) }
        return [
            try await submit(
                DeploymentRequest(
                    app: pipeline.app, trigger: .push, ref: notice.ref, commit: after.hex, message: commit.summary,
                    author: commit.author.name, gatedFrom: before?.hex ?? OID.zero.hex))
        ]
    }

    /// At start-up: the branch head of `app`, read from its repository, against the last head the daemon saw. A
    /// push made while the daemon was down is deployed now.
    func catchUp(app: String) async throws(DeployError) -> [Deployment] {
        try await pollOrCatchUp(app: app, trigger: .catchUp)
    }

    /// A poll: list the remote's heads first, and fetch only if the branch moved.
    func poll(app: String) async throws(DeployError) -> [Deployment] {
        try await pollOrCatchUp(app: app, trigger: .poll)
    }

    private func pollOrCatchUp(app: String, trigger: DeploymentTrigger) async throws(DeployError) -> [Deployment] {
        let pipeline = try validPipeline(app)
        await locks.acquire(app)
        defer { locks.release(app) }
        let mirror = mirrors.mirror(for: pipeline)
        let remote = try await mirrors.remoteHead(mirror, app: app, branch: pipeline.branch)
        let seen = try await seenOrLive(app)
        guard let remote, remote.hex != seen else { return [] }
        return try await deployHeadIfNew(
            pipeline, trigger: trigger, ref: "refs/heads/\(pipeline.branch)", before: nil, after: nil, arrived: .now)
    }

    /// A deploy asked for by hand: any branch, tag or sha, fetched first. It ignores `paths:` and what was seen.
    // Swift 6.3's optimiser crashes (signal 11, splitting this coroutine) in release builds; it is not hot code.
    @_optimize(none)
    func deploy(app: String, ref: String?) async throws(DeployError) -> Deployment {
        let pipeline = try validPipeline(app)
        let revision = ref.map { $0.isEmpty ? pipeline.branch : $0 } ?? pipeline.branch
        let mirror = mirrors.mirror(for: pipeline)
        try await mirrors.fetch(mirror, app: app)
        guard let oid = try? await mirror.resolve(revision) else {
            throw .notFound("no branch, tag or commit '\(revision)' in \(app)'s repository")
        }
        let commit = try await read(mirror, app) { try await $0.commit(oid) }
        return try await submit(
            DeploymentRequest(
                app: app, trigger: .manual, ref: revision, commit: oid.hex, message: commit.summary,
                author: commit.author.name))
    }

    /// A rollback asked for by hand (or by the dashboard).
    func rollback(app: String, to target: RollbackTarget?) async throws(DeployError) -> Deployment {
        let pipeline = try validPipeline(app)
        let planned = try await RollbackPlanner(context: context, mirrors: mirrors).plan(app: pipeline, target: target)
        return try await submit(planned)
    }

    /// Queues a deployment, or, while the app's pipeline file is invalid, records it as failed at once with the
    /// file's errors: it is not deployed with an older version of the file.
    private func submit(_ request: DeploymentRequest) async throws(DeployError) -> Deployment {
        guard let problem = registry.app(request.app)?.configError else { return try await queue.submit(request) }
        let refused: Deployment
        do {
            refused = try await context.store.insert(request)
        } catch {
            throw .store(error)
        }
        context.events.publish(.deployment(refused))
        return await DeploymentRun.refuse(
            refused, because: "\(request.app)'s pipeline file is invalid:\n\(problem)", context: context)
    }

    // MARK: -

    func validPipeline(_ app: String) throws(DeployError) -> Pipeline {
        guard let definition = registry.app(app) else { throw .unknownApp(app) }
        guard let pipeline = definition.pipeline else {
            throw .configuration("\(app)'s pipeline file is invalid:\n\(definition.configError ?? "")")
        }
        return pipeline
    }

    private func lastSeenHead(_ app: String) async throws(DeployError) -> String? {
        if let cached = seenHeads.withLock({ $0[app] }) { return cached.value }
        let stored: String?
        do {
            stored = try await context.store.appState(app).lastSeenHead
        } catch {
            throw .store(error)
        }
        seenHeads.withLock { $0[app] = SeenHead(value: stored) }
        return stored
    }

    /// The last head a notice saw or, when none has (a fresh state, or only manual deploys so far), the live commit:
    /// a head that is already live is not new.
    private func seenOrLive(_ app: String) async throws(DeployError) -> String? {
        if let seen = try await lastSeenHead(app) { return seen }
        return try await liveCommit(app)?.hex
    }

    /// The commit live for `app`, when one is: what `paths:` compares with when no notice has seen a head yet.
    private func liveCommit(_ app: String) async throws(DeployError) -> OID? {
        try await DeployError.wrapping {
            guard let live = try await context.store.appState(app).liveRelease else { return nil }
            return try await context.store.release(live).flatMap { OID(hex: $0.commit) }
        }
    }

    /// Reads from a mirror; a failure there is Slipway's own (the mirror was fetched), not the request's.
    private func read<T: Sendable>(
        _ mirror: RepositoryMirror, _ app: String, _ body: (RepositoryMirror) async throws -> T
    ) async throws(DeployError) -> T {
        do {
            return try await body(mirror)
        } catch {
            let reason = (error as? GitError)?.message ?? "\(error)"
            throw .internalFailure("cannot read \(app)'s mirror: \(reason)")
        }
    }

    /// Fetch, then deploy the branch head if no notice has seen it and `paths:` wants it. Call with the app's lock.
    private func deployHeadIfNew(
        _ pipeline: Pipeline, trigger: DeploymentTrigger, ref: String, before: OID?, after: OID?,
        arrived: ContinuousClock.Instant
    ) async throws(DeployError) -> [Deployment] {
        let app = pipeline.app
        let mirror = mirrors.mirror(for: pipeline)
        let found: OID?
        // No fetch is needed when one started after this notice arrived, or when the commit the notice names is the
        // head the last fetch found (a repeated or redelivered notice).
        if let fetched = fetchedHeads.withLock({ $0[app] }), fetched.branch == pipeline.branch,
            fetched.started > arrived || (after != nil && fetched.head == after)
        {
            found = fetched.head
        } else {
            // Apps that follow the same repository share its mirror: one fetch after the notice serves them all.
            let started = try await mirrors.fetch(mirror, app: app, asked: arrived)
            found = try await read(mirror, app) { try await $0.head(branch: pipeline.branch) }
            // Only a fetch that worked can stand in for the notices that waited on it.
            fetchedHeads.withLock { $0[app] = FetchedHead(started: started, branch: pipeline.branch, head: found) }
        }
        guard let head = found else { return [] }
        let seen = try await seenOrLive(app)
        let logger = context.logger.about(app: app)
        guard head.hex != seen else {
            logger.debug("head \(head.short) was seen before; nothing to deploy")
            return []
        }
        // The head may be live although no notice saw it: deployed by hand, or a restored, older state next to a
        // deploy_to that is newer than it.
        var wanted = try await liveCommit(app) != head
        if !wanted { logger.info("\(head.short) is live already; not deploying it again") }
        if wanted, !pipeline.paths.isEmpty {
            // With no head seen yet (a fresh state, or only manual deploys so far), `seen` is what is live: only when
            // nothing is live does every file count as changed.
            let since = seen.flatMap(OID.init(hex:)) ?? before
            let changed = try await read(mirror, app) { [since] in try await $0.changedPaths(from: since, to: head) }
            wanted = pipeline.wantsDeploy(forChangedPaths: changed)
            if !wanted { logger.info("\(head.short) changes no file under paths: \(pipeline.paths); not deploying") }
        }
        do {
            try await context.store.updateAppState(app) { $0.lastSeenHead = head.hex }
        } catch {
            throw .store(error)
        }
        seenHeads.withLock { $0[app] = SeenHead(value: head.hex) }
        guard wanted else { return [] }
        // A deployment of this head already runs or waits (a manual deploy, or one queued before a restart).
        if await queue.hasPending(app: app, commit: head.hex) {
            logger.info("\(head.short) is already being deployed; not queueing it again")
            return []
        }
        let commit = try await read(mirror, app) { try await $0.commit(head) }
        let deployment = try await submit(
            DeploymentRequest(
                app: app, trigger: trigger, ref: ref, commit: head.hex, message: commit.summary,
                author: commit.author.name))
        return [deployment]
    }
}

extension Intake: CustomStringConvertible {
    /// Never the webhook secret: ServiceLifecycle logs every service, and the poll service holds the intake, with
    /// `\(service)` at debug level.
    var description: String { "Intake" }
}
