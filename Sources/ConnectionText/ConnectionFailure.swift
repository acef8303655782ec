import AsyncHTTPClient
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Words for why an HTTP request got no answer, for a health check's log and the client's error messages.
///
/// AsyncHTTPClient's errors describe themselves as Swift values (`NIOConnectionError(host: …, connectionErrors: …)`),
/// which tells a user less than "connection refused".
public func describeConnectionFailure(_ error: any Error) -> String {
    switch error {
    case let error as NIOConnectionError:
        if let first = error.connectionErrors.first {
            return "\(describeConnectionFailure(first.error)) (\(error.host):\(error.port))"
        }
        if error.dnsAError != nil || error.dnsAAAAError != nil { return "cannot resolve \(error.host)" }
        return "cannot connect to \(error.host):\(error.port)"
    case let error as IOError:
        return String(cString: strerror(error.errnoCode)).lowercased()
    case let error as HTTPClientError:
        switch error {
        case .connectTimeout: return "timed out connecting"
        case .deadlineExceeded, .readTimeout: return "timed out waiting for an answer"
        case .remoteConnectionClosed: return "the connection was closed before an answer"
        case .invalidURL, .emptyHost, .emptyScheme: return "not a valid URL"
        default: return "\(error)"
        }
    case is ChannelError:
        return "the connection failed (\(error))"
    default:
        return "\(error)"
    }
}
