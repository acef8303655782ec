import Foundation
import Pipeline

/// Finds the processes of a deployment's steps that outlived the daemon, by what every step carries in its
/// environment: `SLIPWAY_DEPLOYMENT` and `SLIPWAY_DEPLOY_TO`. The process group the store remembers is not
/// enough: a crash in the moment between starting a step and recording its group, or during a health check
/// command, leaves no group on record.
///
/// A process that left its step's session (`setsid`) is a service an activate step started on purpose, and is
/// left alone; everything else of the deployment is in the daemon's old session and is ended by process group.
enum StrayProcesses {
    struct Process: Equatable {
        let pid: pid_t
        let group: pid_t
        let session: pid_t
    }

    /// The process groups to end for a deployment that was interrupted.
    static func groups(deployment: Int64, deployTo: String) -> [ProcessGroup] {
        #if os(Linux)
            let marked = markedProcesses(deployment: deployment, deployTo: deployTo)
            let markedIDs = Set(marked.map(\.pid))
            let groups = Set(marked.filter { !markedIDs.contains($0.session) }.map(\.group))
            return groups.sorted().map(ProcessGroup.init)
        #else
            return []
        #endif
    }

    static func markedProcesses(deployment: Int64, deployTo: String) -> [Process] {
        let wanted: Set<String> = ["SLIPWAY_DEPLOYMENT=\(deployment)", "SLIPWAY_DEPLOY_TO=\(deployTo)"]
        let ownPID = getpid()
        var found: [Process] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), pid != ownPID,
                let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ")
            else { continue }
            let variables = Set(environment.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
            guard wanted.isSubset(of: variables),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After the command name: state, ppid, pgrp, session, ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, fields[0] != "Z", let group = pid_t(fields[2]), let session = pid_t(fields[3])
            else { continue }
            found.append(Process(pid: pid, group: group, session: session))
        }
        return found
    }
}
