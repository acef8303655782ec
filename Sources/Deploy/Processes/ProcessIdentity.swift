import Foundation

/// A process as a restarted daemon can recognise it: its pid, and its start time in clock ticks since boot
/// (field 22 of `/proc/<pid>/stat`) on this boot of the machine. A pid alone is not enough: once a process has
/// exited, the kernel may give its pid to any other process.
struct ProcessIdentity: Codable, Sendable, Hashable {
    var pid: pid_t
    var startTime: UInt64
    var bootID: String

    /// The identity of the running process `pid`; nil when there is none (or it is a zombie).
    static func of(_ pid: pid_t) -> ProcessIdentity? {
        guard pid > 0, let stat = ProcStat(pid: pid), !stat.isZombie else { return nil }
        return ProcessIdentity(pid: pid, startTime: stat.startTime, bootID: bootID)
    }

    /// True while the very process this identity was taken from runs: same pid, same start time, same boot.
    var isRunning: Bool {
        guard bootID == Self.bootID, let stat = ProcStat(pid: pid), !stat.isZombie else { return false }
        return stat.startTime == startTime
    }

    /// This boot of the machine; start times count from it.
    static let bootID: String =
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
}

/// The fields of `/proc/<pid>/stat` that Slipway reads.
struct ProcStat {
    /// R, S, D, Z, T, …
    let state: Character
    let processGroup: pid_t
    let startTime: UInt64

    init?(pid: pid_t) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // The command name (field 2) is in parentheses and may hold spaces; count the fields after it. Field 3 is
        // the state, so field N is at index N - 3.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let state = fields[0].first, let group = pid_t(fields[2]),
            let start = UInt64(fields[19])
        else { return nil }
        self.state = state
        self.processGroup = group
        self.startTime = start
    }

    var isZombie: Bool { state == "Z" || state == "X" }
}
