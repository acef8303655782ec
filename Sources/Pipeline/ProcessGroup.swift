import Foundation

/// A step's process group, which gets the signals: a step's children and grandchildren are in it unless they
/// left it on purpose (`setsid`).
public struct ProcessGroup: Sendable, Hashable {
    public let id: pid_t

    public init(_ id: pid_t) {
        self.id = id
    }

    /// Sends `signal` to every process in the group.
    public func send(_ signal: Int32) {
        guard id > 1 else { return }
        kill(-id, signal)
    }

    /// The processes still in the group that have not exited. Zombies waiting to be reaped do not count: they
    /// hold no resources and can no longer write anything.
    public var livingMembers: [pid_t] {
        guard id > 1, kill(-id, 0) == 0 || errno == EPERM else { return [] }
        #if os(Linux)
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return entries.compactMap { entry -> pid_t? in
                guard let pid = pid_t(entry),
                    let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                    let close = stat.lastIndex(of: ")")
                else { return nil }
                // Fields after the command name: state, ppid, pgrp, ...
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                guard fields.count > 2, fields[0] != "Z", fields[0] != "X", pid_t(fields[2]) == id else { return nil }
                return pid
            }
        #else
            return [id]
        #endif
    }

    public var isAlive: Bool { !livingMembers.isEmpty }

    /// SIGTERM to the whole group; whatever is still alive after `grace` gets SIGKILL. Returns once the group is
    /// gone, or after a further two seconds if something refuses to die (a process stuck in the kernel).
    public func terminate(grace: Duration) async {
        guard isAlive else { return }
        send(SIGTERM)
        send(SIGCONT)  // a stopped process cannot act on SIGTERM
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        while clock.now < deadline, isAlive {
            await pause(milliseconds: 25)
        }
        guard isAlive else { return }
        send(SIGKILL)
        let end = clock.now + .seconds(2)
        while clock.now < end, isAlive {
            await pause(milliseconds: 10)
        }
    }
}

/// Sleeps without throwing, even in a cancelled task: cleanup that waits on processes must still wait.
func pause(milliseconds: Int) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(milliseconds)) {
            continuation.resume()
        }
    }
}
