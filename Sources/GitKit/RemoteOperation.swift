import CLibGit2
import Foundation

/// The state of one remote operation (a fetch or a listing of remote heads), shared with libgit2's C callbacks and
/// with GitKit's own transports and streams, which libgit2 creates with no way to pass them anything.
///
/// libgit2 runs an operation's callbacks, transports and streams on the thread that called it, so the state is
/// published in a thread-local for the length of the call and found there. It is used by that one thread only.
final class RemoteCallbackState {
    let credentials: Credentials
    let timeouts: NetworkTimeouts
    let cancellation: FetchCancellation?
    var credentialAttempts = 0
    var updates: [RefUpdate] = []
    /// Set by a transport or stream that knows better than libgit2's message what went wrong (a timeout, a refused
    /// host key); thrown in place of libgit2's error.
    var failure: GitError?

    init(credentials: Credentials, timeouts: NetworkTimeouts = .default, cancellation: FetchCancellation? = nil) {
        self.credentials = credentials
        self.timeouts = timeouts
        self.cancellation = cancellation
    }

    /// Records `error` as the reason the operation failed (the first reason wins) and puts it in libgit2's error
    /// slot, so that even a caller that does not look here sees the words.
    func fail(_ error: GitError) {
        if failure == nil { failure = error }
        git_error_set_str(error.errorClass.rawValue, error.message)
    }

    /// Runs `body` with `callbacks` wired to this state and the state published to GitKit's transports. The state
    /// must outlive the call, which `body` guarantees.
    func withCallbacks<T>(_ body: (inout git_remote_callbacks) throws(GitError) -> T) throws(GitError) -> T {
        if cancellation?.isCancelled == true { throw GitError.cancelled() }
        var callbacks = git_remote_callbacks()
        git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION))
        callbacks.credentials = acquireCredential
        callbacks.update_tips = recordTipUpdate
        callbacks.transfer_progress = reportTransferProgress
        callbacks.sideband_progress = reportSidebandProgress
        callbacks.payload = Unmanaged.passUnretained(self).toOpaque()
        let previous = CurrentRemoteOperation.state
        CurrentRemoteOperation.state = self
        defer { CurrentRemoteOperation.state = previous }
        do {
            return try withExtendedLifetime(self) { () throws(GitError) -> T in try body(&callbacks) }
        } catch {
            throw failure ?? (cancellation?.isCancelled == true ? GitError.cancelled() : error)
        }
    }

    /// Called between libgit2's steps: non-zero stops the operation.
    func shouldStop() -> Bool {
        guard cancellation?.isCancelled == true else { return false }
        fail(.cancelled())
        return true
    }
}

/// The remote operation running on this thread, if any.
enum CurrentRemoteOperation {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Unretained: `RemoteCallbackState.withCallbacks` keeps the state alive while it is published.
    static var state: RemoteCallbackState? {
        get {
            pthread_getspecific(key).map { Unmanaged<RemoteCallbackState>.fromOpaque($0).takeUnretainedValue() }
        }
        set {
            pthread_setspecific(key, newValue.map { Unmanaged.passUnretained($0).toOpaque() })
        }
    }
}

extension GitError {
    static func cancelled() -> GitError {
        GitError(
            code: .cancelled, errorClass: ErrorClass(rawValue: Int32(GIT_ERROR_NET.rawValue)),
            message: "the operation was cancelled", function: "fetch")
    }

    static func timedOut(_ what: String, after milliseconds: Int32) -> GitError {
        GitError(
            code: .timeout, errorClass: ErrorClass(rawValue: Int32(GIT_ERROR_NET.rawValue)),
            message: "timed out after \(Self.seconds(milliseconds)) \(what)", function: "fetch")
    }

    private static func seconds(_ milliseconds: Int32) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
    }
}

private func state(_ payload: UnsafeMutableRawPointer?) -> RemoteCallbackState? {
    payload.map { Unmanaged<RemoteCallbackState>.fromOpaque($0).takeUnretainedValue() }
}

private func reportTransferProgress(
    _ stats: UnsafePointer<git_indexer_progress>?, _ payload: UnsafeMutableRawPointer?
)
    -> Int32
{
    state(payload)?.shouldStop() == true ? -1 : 0
}

private func reportSidebandProgress(
    _ text: UnsafePointer<CChar>?, _ length: Int32, _ payload: UnsafeMutableRawPointer?
)
    -> Int32
{
    state(payload)?.shouldStop() == true ? -1 : 0
}

private func recordTipUpdate(
    _ name: UnsafePointer<CChar>?, _ old: UnsafePointer<git_oid>?, _ new: UnsafePointer<git_oid>?,
    _ payload: UnsafeMutableRawPointer?
) -> Int32 {
    guard let state = state(payload), let name else { return 0 }
    let before = old.map(OID.init).flatMap { $0.isZero ? nil : $0 }
    let after = new.map(OID.init).flatMap { $0.isZero ? nil : $0 }
    state.updates.append(RefUpdate(name: String(lenientCString: name), old: before, new: after))
    return 0
}
