import Foundation
import GitKit
import Pipeline

/// Every app's mirror, made on first use and kept for the life of the daemon, and the network calls made on them.
///
/// Every call is bounded by `timeouts`. A fetch made for a deployment is stopped by the deployment's cancellation;
/// any other (a notice's, a poll's, a manual deploy's) is stopped when the daemon shuts down, so that a remote
/// that says nothing cannot keep the daemon from stopping.
final class MirrorPool: Sendable {
    private let context: DeployContext
    private let credentials: Credentials
    let timeouts: NetworkTimeouts
    /// Each app's mirror and the URL it was last pointed at, so that following a changed `repository:` costs a
    /// trip into the mirror's actor only when the URL really changed.
    private let mirrors = Locked([String: (mirror: RepositoryMirror, url: String)]())
    /// The calls in flight that a shutdown stops, and whether it has.
    private let outside = Locked((calls: [UUID: FetchCancellation](), stopped: false))

    init(context: DeployContext, credentials: Credentials = .none, timeouts: NetworkTimeouts = .default) {
        self.context = context
        self.credentials = credentials
        self.timeouts = timeouts
    }

    /// Stops every network call that is not a deployment's, and every later one: the daemon is shutting down.
    func stopOutsideCalls() {
        let calls = outside.withLock { state in
            state.stopped = true
            return Array(state.calls.values)
        }
        for call in calls { call.cancel() }
    }

    /// Runs `body` with a cancellation that a shutdown fires.
    func outsideCall<T>(_ body: (FetchCancellation) async throws(DeployError) -> T) async throws(DeployError) -> T {
        let cancellation = FetchCancellation()
        let key = UUID()
        let stopped = outside.withLock { state in
            state.calls[key] = cancellation
            return state.stopped
        }
        if stopped { cancellation.cancel() }
        defer { _ = outside.withLock { $0.calls.removeValue(forKey: key) } }
        return try await body(cancellation)
    }

    /// The app's mirror, following its pipeline's `repository:` if that changed.
    func mirror(for pipeline: Pipeline) async throws(DeployError) -> RepositoryMirror {
        let (mirror, url) = mirrors.withLock { mirrors in
            if let entry = mirrors[pipeline.app] { return entry }
            let made = RepositoryMirror(
                path: context.mirrorPath(app: pipeline.app), url: pipeline.repository, credentials: credentials,
                timeouts: timeouts)
            mirrors[pipeline.app] = (made, pipeline.repository)
            return (made, pipeline.repository)
        }
        if url != pipeline.repository {
            do {
                try await mirror.setURL(pipeline.repository)
            } catch {
                throw .internalFailure("cannot point \(pipeline.app)'s mirror at its new repository: \(error.message)")
            }
            mirrors.withLock { $0[pipeline.app] = (mirror, pipeline.repository) }
        }
        return mirror
    }

    /// Fetches an app's mirror and records how long it took (`slipway_fetch_duration_seconds`). Every fetch the
    /// daemon makes goes through here; without a `cancellation` of a deployment's, a shutdown stops it.
    func fetch(
        _ mirror: RepositoryMirror, app: String, cancellation: FetchCancellation? = nil
    )
        async throws(DeployError)
    {
        guard let cancellation else {
            return try await outsideCall { (call) throws(DeployError) -> Void in
                try await fetch(mirror, app: app, cancellation: call)
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try await mirror.fetch(cancellation: cancellation)
        } catch {
            throw .repositoryUnavailable("fetching \(app)'s repository failed: \(error.message)")
        }
        context.metrics.fetched(app: app, duration: clock.now - start)
    }

    /// The remote's head of `branch`, stopped by a shutdown.
    func remoteHead(_ mirror: RepositoryMirror, app: String, branch: String) async throws(DeployError) -> OID? {
        try await outsideCall { (call) throws(DeployError) -> OID? in
            do throws(GitError) {
                return try await mirror.remoteHead(branch: branch, cancellation: call)
            } catch {
                throw .repositoryUnavailable("listing \(app)'s repository failed: \(error.message)")
            }
        }
    }
}
