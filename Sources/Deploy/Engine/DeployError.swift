/// The one error type of Deploy's public API. Whatever fails underneath (git, the disk, the store) is caught where
/// it happens and wrapped in one of these, in words; the server maps each case to the API's error JSON in one place.
public enum DeployError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No pipeline defines this app.
    case unknownApp(String)
    /// A deployment, release or commit that does not exist.
    case notFound(String)
    /// The request is well-formed but the state does not allow it (nothing to roll back to, already finished).
    case conflict(String)
    /// The request itself is wrong (a malformed ref, a bad target, a malformed delivery).
    case invalid(String)
    /// No secret configured for it verifies a forge delivery (or none is configured at all).
    case unauthenticated
    /// The app's pipeline file is broken and there is no good version to fall back on.
    case configuration(String)
    /// The app's repository could not be fetched (it moved, the network is down, the credentials are wrong).
    case repositoryUnavailable(String)
    /// The store could not be read or written.
    case store(StoreError)
    /// Something underneath failed in a way the request could not cause (a mirror that cannot be read).
    case internalFailure(String)

    public var description: String {
        switch self {
        case .unknownApp(let app): "there is no app named '\(app)'"
        case .unauthenticated: "the delivery could not be authenticated"
        case .store(let error): error.description
        case .notFound(let message), .conflict(let message), .invalid(let message), .configuration(let message),
            .repositoryUnavailable(let message), .internalFailure(let message):
            message
        }
    }
}

extension DeployError {
    /// Runs `body`, which throws only `DeployError` and `StoreError`, and gives back its error as a `DeployError`.
    /// Anything else escaping it is a bug of Deploy's own and becomes `internalFailure`, so that no raw text from
    /// below reaches a client.
    static func wrapping<T>(_ body: () async throws -> T) async throws(DeployError) -> T {
        do {
            return try await body()
        } catch let error as DeployError {
            throw error
        } catch let error as StoreError {
            throw .store(error)
        } catch {
            throw .internalFailure("an unexpected error: \(type(of: error))")
        }
    }
}
