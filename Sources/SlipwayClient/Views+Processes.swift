import Foundation
import SlipwayAPI

extension Views {
    /// `slipway ps APP`: one line per instance.
    public func processes(_ processes: [API.Process], of app: String) -> String {
        if processes.isEmpty { return "\(app) runs no processes (its pipeline has no 'processes:', or none is live)" }
        return terminal.table(
            ["PROCESS", "STATUS", "PID", "PORT", "RELEASE", "RESTARTS", "UP SINCE"],
            processes.map {
                [
                    "\($0.name).\($0.instance)", $0.status.rawValue, $0.pid.map(String.init) ?? "-", String($0.port),
                    String($0.release), String($0.restarts), $0.startedAt == nil ? "-" : relative($0.startedAt),
                ]
            }, statusColumn: 1)
    }
}
