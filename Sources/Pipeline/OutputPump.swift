@preconcurrency import Dispatch
import Foundation

/// Reads a step's output pipe without blocking a thread, and feeds it to the deployment log.
///
/// The pipe is the step's stdout and stderr together, so lines keep the order the step wrote them in. The pump
/// runs until every writer has closed the pipe, or until it is stopped: a process that escaped the step's process
/// group may hold the pipe open for ever, and must not hold the deployment with it.
final class OutputPump: @unchecked Sendable {
    // @unchecked: a DispatchSource may be cancelled from any thread; everything else is immutable or in `state`.
    private struct State {
        var finished = false
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private let fd: Int32
    private let source: DispatchSourceRead
    private let state = Locked(State())

    init(fd: Int32, log: DeploymentLog) {
        self.fd = fd
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: DispatchQueue(label: "slipway.output"))
        let state = self.state
        // One buffer for the pump's life: the handlers run one at a time on the source's serial queue, and the
        // cancel handler, which runs last, frees it.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)
        source.setEventHandler { [source] in
            while true {
                let n = read(fd, buffer.baseAddress, buffer.count)
                if n > 0 {
                    log.output(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
                    continue
                }
                if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
                // End of file, or an error that means the same for us.
                source.cancel()
                return
            }
        }
        source.setCancelHandler {
            buffer.deallocate()
            close(fd)
            log.flush()
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                state.finished = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: true)
        }
        source.activate()
    }

    /// Waits for the end of the output, for at most `timeout`. Returns false if the pipe is still open then.
    func waitForEnd(timeout: Duration) async -> Bool {
        let finished: Bool = await withCheckedContinuation { continuation in
            let alreadyDone = state.withLock { state -> Bool in
                if state.finished { return true }
                state.waiter = continuation
                return false
            }
            if alreadyDone {
                continuation.resume(returning: true)
                return
            }
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [state] in
                let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume(returning: false)
            }
        }
        return finished
    }

    /// Stops reading and closes the pipe; whoever still writes to it gets EPIPE.
    func stop() {
        source.cancel()
    }
}
