import Dispatch
import Foundation
import Pipeline

/// Waits for a process to exit, whether it is the daemon's child or one a restarted daemon found again: a pidfd
/// (Linux 5.3) becomes readable when its process ends, so the wait needs neither a thread nor a timer.
enum ProcessExit {
    /// How a process ended, when the daemon could see it: only a child's status can be read.
    enum Ending: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        /// Not a child of this daemon (found again after a restart): it ended, but how is not known.
        case unknown

        var text: String {
            switch self {
            case .exited(let code): "exited with status \(code)"
            case .signalled(let signal): "was ended by signal \(signal)"
            case .unknown: "exited"
            }
        }
    }

    /// Returns once the process `identity` names has ended (at once if it has already), and reaps it if it is a
    /// child. A cancelled task stops waiting and gets nil.
    static func wait(for identity: ProcessIdentity) async -> Ending? {
        let pid = identity.pid
        guard let open = pidfdOpen else { return await poll(identity) }
        let descriptor = open(pid, 0)
        // The pidfd pins the process: if the identity is still right now, the descriptor is about that process. A
        // child that has already exited is a zombie, which does not count as running: it is reaped at once.
        guard descriptor >= 0, identity.isRunning else {
            if descriptor >= 0 { close(descriptor) }
            return reap(pid)
        }
        let watch = Watch(descriptor: descriptor)
        let ended = await withTaskCancellationHandler {
            await watch.wait()
        } onCancel: {
            watch.cancel()
        }
        return ended ? reap(pid) : nil
    }

    /// The child's ending, once reaped; `.unknown` for a process that is not a child.
    private static func reap(_ pid: pid_t) -> Ending {
        var status: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(pid, &status, WNOHANG) } while result < 0 && errno == EINTR
        guard result == pid else { return .unknown }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// Where there is no pidfd: look once a second.
    private static func poll(_ identity: ProcessIdentity) async -> Ending? {
        while identity.isRunning {
            guard (try? await Task.sleep(for: .seconds(1))) != nil else { return nil }
        }
        return reap(identity.pid)
    }

    private typealias PidfdOpen = @convention(c) (pid_t, UInt32) -> Int32
    private static let pidfdOpen: PidfdOpen? = ProcessLauncher.symbol("pidfd_open")

    /// One pidfd, watched by a dispatch source until it is readable or the wait is cancelled.
    ///
    /// Unchecked: the source is set once in init, and a dispatch source may be cancelled from any thread.
    private final class Watch: @unchecked Sendable {
        private let source: DispatchSourceRead
        private let waiter = Locked<(done: Bool, ended: Bool, continuation: CheckedContinuation<Bool, Never>?)>(
            (false, false, nil))

        init(descriptor: Int32) {
            source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: Self.queue)
            let waiter = self.waiter
            source.setEventHandler { [source] in
                waiter.withLock { $0.ended = true }
                source.cancel()
            }
            source.setCancelHandler {
                close(descriptor)
                let continuation = waiter.withLock { state -> CheckedContinuation<Bool, Never>? in
                    state.done = true
                    defer { state.continuation = nil }
                    return state.continuation
                }
                continuation?.resume(returning: waiter.value.ended)
            }
            source.activate()
        }

        func wait() async -> Bool {
            await withCheckedContinuation { continuation in
                let finished = waiter.withLock { state -> Bool? in
                    if state.done { return state.ended }
                    state.continuation = continuation
                    return nil
                }
                if let finished { continuation.resume(returning: finished) }
            }
        }

        func cancel() {
            source.cancel()
        }

        private static let queue = DispatchQueue(label: "slipway.process-exit")
    }
}
