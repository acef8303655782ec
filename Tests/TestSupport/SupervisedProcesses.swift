import Foundation

/// Ends every process a daemon started for `app` (each instance's session, and its public ports' forwarders), by
/// the state the daemon keeps in `<state>/processes/<app>.json`. Stopping a daemon does not stop them, by design,
/// so a test that deployed an app with `processes:` ends them itself.
public func endSupervisedProcesses(state: String, app: String) {
    guard let data = FileManager.default.contents(atPath: "\(state)/processes/\(app).json"),
        let record = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return }
    var pids: [Int32] = []
    for generation in record["generations"] as? [[String: Any]] ?? [] {
        for instance in generation["instances"] as? [[String: Any]] ?? [] {
            if let pid = (instance["identity"] as? [String: Any])?["pid"] as? Int { pids.append(Int32(pid)) }
        }
    }
    for forwarder in record["forwarders"] as? [[String: Any]] ?? [] {
        if let pid = (forwarder["identity"] as? [String: Any])?["pid"] as? Int { pids.append(Int32(pid)) }
    }
    // Each runs in a session, and so a process group, of its own.
    for pid in pids { kill(-pid, SIGKILL) }
}
