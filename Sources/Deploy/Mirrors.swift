import GitKit
import Pipeline

/// Every app's mirror, made on first use and kept for the life of the daemon.
public actor Mirrors {
    private let context: DeployContext
    private let credentials: Credentials
    private var mirrors: [String: Mirror] = [:]

    public init(context: DeployContext, credentials: Credentials = .none) {
        self.context = context
        self.credentials = credentials
    }

    /// The app's mirror, following its pipeline's `repository:` if that changed.
    public func mirror(for pipeline: Pipeline) async throws -> Mirror {
        if let mirror = mirrors[pipeline.app] {
            if mirror.path == context.mirrorPath(app: pipeline.app) {
                try await mirror.setURL(pipeline.repository)
                return mirror
            }
        }
        let mirror = Mirror(path: context.mirrorPath(app: pipeline.app), url: pipeline.repository, credentials: credentials)
        mirrors[pipeline.app] = mirror
        return mirror
    }
}
