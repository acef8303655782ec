import Dispatch
import Synchronization

/// A request to stop a deployment, passed down to whatever step is running.
///
/// This is not Swift task cancellation on purpose: a cancelled deployment still has work to do (end the step's
/// processes, wait for them, remove the release directory, record the outcome), and in a cancelled task every
/// `Task.sleep` and many awaits would give up at once.
public final class Cancellation: Sendable {
    /// Why the deployment is being stopped: a user asked, the daemon is shutting down, or the daemon lost the
    /// deployment's lease in the store (another node may have taken it over).
    public enum Reason: Sendable, Equatable {
        case requested
        case shutdown
        case leaseLost
    }

    private struct State {
        var cancelled = false
        var reason: Reason = .requested
        var handlers: [Int: @Sendable () -> Void] = [:]
        var next = 0
    }

    private let state = Mutex(State())

    public init() {}

    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    public var reason: Reason { state.withLock { $0.reason } }

    /// Cancels, running every registered handler once.
    public func cancel(_ reason: Reason = .requested) {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.cancelled else { return [] }
            state.cancelled = true
            state.reason = reason
            defer { state.handlers.removeAll() }
            return Array(state.handlers.values)
        }
        handlers.forEach { $0() }
    }

    /// Runs `handler` on cancellation, at once if already cancelled. Returns a key for `removeHandler`.
    @discardableResult
    public func onCancel(_ handler: @escaping @Sendable () -> Void) -> Int {
        let (key, runNow) = state.withLock { state -> (Int, Bool) in
            if state.cancelled { return (-1, true) }
            state.next += 1
            state.handlers[state.next] = handler
            return (state.next, false)
        }
        if runNow { handler() }
        return key
    }

    public func removeHandler(_ key: Int) {
        _ = state.withLock { $0.handlers.removeValue(forKey: key) }
    }

    /// Waits `duration`, or until cancelled if that comes first. It never throws: whoever waits has cleanup to do.
    public func sleep(for duration: Duration) async {
        guard !isCancelled else { return }
        let resumed = Locked(false)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resume: @Sendable () -> Void = {
                let first = resumed.withLock { done in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume() }
            }
            let key = onCancel(resume)
            let (seconds, attoseconds) = duration.components
            let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(max(0, nanoseconds))) {
                self.removeHandler(key)
                resume()
            }
        }
    }
}
