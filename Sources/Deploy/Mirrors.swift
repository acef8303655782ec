import GitKit
import Pipeline

/// Every app's mirror, made on first use and kept for the life of the daemon.
public final class Mirrors: Sendable {
    private let context: DeployContext
    private let credentials: Credentials
    /// Each app's mirror and the URL it was last pointed at, so that following a changed `repository:` costs a
    /// trip into the mirror's actor only when the URL really changed.
    private let mirrors = Locked([String: (mirror: Mirror, url: String)]())

    public init(context: DeployContext, credentials: Credentials = .none) {
        self.context = context
        self.credentials = credentials
    }

    /// The app's mirror, following its pipeline's `repository:` if that changed.
    public func mirror(for pipeline: Pipeline) async throws -> Mirror {
        let (mirror, url) = mirrors.withLock { mirrors in
            if let entry = mirrors[pipeline.app] { return entry }
            let made = Mirror(path: context.mirrorPath(app: pipeline.app), url: pipeline.repository, credentials: credentials)
            mirrors[pipeline.app] = (made, pipeline.repository)
            return (made, pipeline.repository)
        }
        if url != pipeline.repository {
            try await mirror.setURL(pipeline.repository)
            mirrors.withLock { $0[pipeline.app] = (mirror, pipeline.repository) }
        }
        return mirror
    }
}
