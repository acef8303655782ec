import GitKit
import Pipeline

/// Every app's mirror, made on first use and kept for the life of the daemon.
final class MirrorPool: Sendable {
    private let context: DeployContext
    private let credentials: Credentials
    /// Each app's mirror and the URL it was last pointed at, so that following a changed `repository:` costs a
    /// trip into the mirror's actor only when the URL really changed.
    private let mirrors = Locked([String: (mirror: RepositoryMirror, url: String)]())

    init(context: DeployContext, credentials: Credentials = .none) {
        self.context = context
        self.credentials = credentials
    }

    /// The app's mirror, following its pipeline's `repository:` if that changed.
    func mirror(for pipeline: Pipeline) async throws(DeployError) -> RepositoryMirror {
        let (mirror, url) = mirrors.withLock { mirrors in
            if let entry = mirrors[pipeline.app] { return entry }
            let made = RepositoryMirror(
                path: context.mirrorPath(app: pipeline.app), url: pipeline.repository, credentials: credentials)
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
    /// daemon makes goes through here.
    func fetch(_ mirror: RepositoryMirror, app: String) async throws(DeployError) {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try await mirror.fetch()
        } catch {
            throw .repositoryUnavailable("fetching \(app)'s repository failed: \(error.message)")
        }
        context.metrics.fetched(app: app, duration: clock.now - start)
    }
}
