import Foundation
import Synchronization

/// Stops a fetch or `listRemoteHeads` from another thread, for example when the daemon shuts down.
///
/// Give the same object to the call (`FetchOptions.cancellation`) and keep it; `cancel()` makes the call throw a
/// `GitError` with code `.cancelled` soon after. A network read that is waiting wakes up at once, because it waits on
/// this object's pipe as well as on the remote; work inside libgit2 (indexing a pack) stops at its next progress
/// report. Once cancelled, an object stays cancelled: make a new one for the next call.
public final class FetchCancellation: Sendable {
    private let cancelled = Atomic<Bool>(false)
    /// A pipe whose read end becomes readable on `cancel()`, so waits can include it in `poll(2)`.
    private let pipeEnds: (read: Int32, write: Int32)

    /// A cancellation that has not fired yet.
    public init() {
        var ends: [Int32] = [-1, -1]
        if makePipe(&ends) {
            _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        } else {
            ends = [-1, -1]  // without a pipe, waits still see the flag when their slice of time ends
        }
        pipeEnds = (ends[0], ends[1])
    }

    deinit {
        if pipeEnds.read >= 0 { close(pipeEnds.read) }
        if pipeEnds.write >= 0 { close(pipeEnds.write) }
    }

    /// Asks the call that uses this object to stop. Safe to call from any thread, any number of times.
    public func cancel() {
        guard !cancelled.exchange(true, ordering: .sequentiallyConsistent) else { return }
        if pipeEnds.write >= 0 {
            var byte: UInt8 = 1
            _ = write(pipeEnds.write, &byte, 1)
        }
    }

    /// True once `cancel()` was called.
    public var isCancelled: Bool { cancelled.load(ordering: .sequentiallyConsistent) }

    /// The descriptor to poll for `POLLIN` alongside the remote's, or -1.
    var wakeDescriptor: Int32 { pipeEnds.read }
}

/// What a bounded wait on a descriptor came to.
enum WaitOutcome {
    case ready
    case timedOut
    case cancelled
}

/// Waits until `fd` has `events`, `milliseconds` pass, or `cancellation` fires, retrying after signals.
func wait(
    for fd: Int32, events: Int16, milliseconds: Int32, cancellation: FetchCancellation?
) -> WaitOutcome {
    let wake = cancellation?.wakeDescriptor ?? -1
    // Without a wake-up pipe, a cancellation is seen after at most this long.
    let slice: Int32 = wake >= 0 ? milliseconds : min(milliseconds, 250)
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(milliseconds) * 1_000_000
    while true {
        if cancellation?.isCancelled == true { return .cancelled }
        let now = DispatchTime.now().uptimeNanoseconds
        if now >= deadline { return .timedOut }
        let remaining = Int32(clamping: (deadline - now + 999_999) / 1_000_000)
        var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        let rc = poll(&fds, wake >= 0 ? 2 : 1, min(remaining, slice))
        if rc < 0 {
            if errno == EINTR { continue }
            return .ready  // let the read or write that follows report the error
        }
        if rc == 0 { continue }
        if wake >= 0, fds[1].revents != 0 { return .cancelled }
        if fds[0].revents != 0 { return .ready }
    }
}

/// `pipe(2)` with both ends close-on-exec, so no child (ssh above all) inherits them. (`pipe2` is not visible to
/// Swift without _GNU_SOURCE.)
func makePipe(_ ends: inout [Int32]) -> Bool {
    guard pipe(&ends) == 0 else { return false }
    for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    return true
}
