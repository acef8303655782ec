/// Why a client command did not do what it was asked, with the exit code the contract gives it.
public enum ClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The command line asked for something that cannot be (exit 2).
    case usage(String)
    /// The operation failed: the daemon refused it, or the deployment did not succeed (exit 1). An empty message
    /// means that what went wrong has already been printed.
    case failed(String)
    /// The daemon could not be reached, or was lost (exit 3).
    case unreachable(String)

    public var description: String {
        switch self {
        case .usage(let message), .failed(let message), .unreachable(let message): message
        }
    }

    /// The contract's exit codes: 1 the operation failed, 2 bad usage, 3 the daemon could not be reached.
    public var exitCode: Int32 {
        switch self {
        case .failed: 1
        case .usage: 2
        case .unreachable: 3
        }
    }
}
