/// The one error type of the Deploy layer. The server turns it into the API's error JSON in one place.
public enum DeployError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No pipeline defines this app.
    case unknownApp(String)
    /// A deployment, release or commit that does not exist.
    case notFound(String)
    /// The request is well-formed but the state does not allow it (nothing to roll back to, already finished).
    case conflict(String)
    /// The request itself is wrong (a malformed ref, a bad target).
    case invalid(String)
    /// The app's pipeline file is broken and there is no good version to fall back on.
    case configuration(String)
    /// The app's repository could not be fetched (it moved, the network is down, the credentials are wrong).
    case unavailable(String)
    /// Something failed underneath (git, the disk, the store).
    case failed(String)

    public var description: String {
        switch self {
        case .unknownApp(let app): "there is no app named '\(app)'"
        case .notFound(let message), .conflict(let message), .invalid(let message), .configuration(let message),
            .unavailable(let message), .failed(let message):
            message
        }
    }
}
