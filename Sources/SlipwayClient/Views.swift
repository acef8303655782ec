import Foundation
import Pipeline
import SlipwayAPI

/// What each client command prints for people, made from the API's objects. (`--json` prints the API's own.)
public struct Views: Sendable {
    public var terminal: Terminal
    /// What "now" is for relative times.
    public var now: Date

    public init(terminal: Terminal = .standardOutput, now: Date = Date()) {
        self.terminal = terminal
        self.now = now
    }

    /// `slipway status`: one line per app. `liveSince` holds, per app, when its live release went live (see
    /// `LiveSince`); an app missing from it shows when its release was made.
    public func apps(_ apps: [API.App], liveSince: [String: Date] = [:]) -> String {
        if apps.isEmpty { return "no apps; add pipeline files to the daemon's --pipelines folder" }
        let rows = apps.map { app -> [String] in
            [
                app.name, app.status.rawValue,
                app.current.map { "\($0.shortCommit) \(truncate($0.message, 40))" } ?? "-",
                relative(liveSince[app.name] ?? app.current?.createdAt), app.queued > 0 ? "\(app.queued) queued" : "",
            ]
        }
        return terminal.table(["APP", "STATUS", "LIVE", "DEPLOYED", "QUEUE"], rows, statusColumn: 1)
    }

    /// `slipway status APP`: the app, its live release (and since when it is live) and its recent deployments.
    public func app(_ app: API.App, deployments: [API.Deployment], liveSince: Date? = nil) -> String {
        var lines = [
            "\(terminal.bold(app.name))  \(terminal.colour(app.status.rawValue, for: app.status.rawValue))",
            "repository  \(app.repository) (\(app.branch))",
            "deploy_to   \(app.deployTo)",
        ]
        if let current = app.current {
            lines.append(
                "live        release \(current.id): \(current.shortCommit) \(current.message) by \(current.author), "
                    + "went live " + relative(liveSince ?? current.createdAt))
        } else {
            lines.append("live        nothing yet")
        }
        if let error = app.configError { lines.append("config      \(error)") }
        guard !deployments.isEmpty else { return lines.joined(separator: "\n") }
        lines.append("")
        lines.append(
            terminal.table(
                ["ID", "KIND", "TRIGGER", "COMMIT", "STATUS", "DURATION", "WHEN", "MESSAGE"],
                deployments.map {
                    [
                        String($0.id), $0.kind.rawValue, $0.trigger.rawValue, $0.shortCommit, $0.status.rawValue,
                        duration($0.durationMs), relative($0.createdAt), truncate($0.message, 50),
                    ]
                }, statusColumn: 4))
        return lines.joined(separator: "\n")
    }

    /// `slipway releases APP`.
    public func releases(_ releases: [API.Release], of app: String) -> String {
        if releases.isEmpty { return "\(app) has no releases on disk" }
        return terminal.table(
            ["", "ID", "COMMIT", "CREATED", "AUTHOR", "MESSAGE"],
            releases.map {
                [
                    $0.active ? "*" : "", String($0.id), $0.shortCommit, relative($0.createdAt), $0.author,
                    truncate($0.message, 60),
                ]
            })
    }

    /// What `deploy` and `rollback` print once the daemon has queued the deployment. A rollback whose release is
    /// no longer on disk builds the commit again, which the daemon shows by queueing it in phase `fetch` rather than
    /// `switch`; that is said, since a rollback is otherwise expected to build nothing.
    public func queued(_ deployment: API.Deployment) -> String {
        let what = deployment.kind == .rollback ? "rollback to" : deployment.kind.rawValue
        var line =
            "deployment \(deployment.id): \(what) \(deployment.shortCommit) \(deployment.message) "
            + "(\(deployment.status.rawValue))"
        if deployment.kind == .rollback, deployment.status == .queued, deployment.phase == .fetch {
            line += "; its release is no longer on disk, so the commit is built again (build, test, migrate)"
        }
        return line
    }

    /// True when `lastLine`, the last line of a deployment's log, already says how it ended (`==> deployment 7
    /// succeeded in 4.2s`, which the daemon writes at the end of every deployment it ran), so that a follower need
    /// not say it again.
    public static func logSaidOutcome(_ lastLine: String?, of deployment: API.Deployment) -> Bool {
        lastLine?.hasPrefix("==> deployment \(deployment.id) \(deployment.status.rawValue)") == true
    }

    /// The last line of a followed log: how the deployment ended.
    public func outcome(_ deployment: API.Deployment) -> String {
        let status = deployment.status.rawValue
        var line = "deployment \(deployment.id) \(terminal.colour(status, for: status))"
        if let newer = deployment.supersededBy { line += " by deployment \(newer)" }
        if let error = deployment.error { line += ": \(error)" }
        if let back = deployment.rolledBackTo { line += " (rolled back to release \(back))" }
        return line
    }

    /// The post-receive hook's last line: git has accepted the push whatever happened, so a deployment that did not
    /// succeed says so in a way nobody can miss. A success the log's last line has said already is not said again.
    public func pushOutcome(_ followed: FollowedLog) -> String? {
        let deployment = followed.deployment
        switch deployment.status {
        case .succeeded:
            return followed.saidOutcome ? nil : outcome(deployment)
        case .superseded:
            return outcome(deployment) + "; the newer push is deployed instead"
        default:
            let banner = terminal.colour("DEPLOY \(deployment.status.rawValue.uppercased())", for: "failed")
            return banner + ": " + outcome(deployment)
        }
    }

    /// What `cancel` prints.
    public func cancelled(_ deployment: API.Deployment) -> String {
        deployment.status == .cancelled
            ? "deployment \(deployment.id) cancelled"
            : "deployment \(deployment.id) is stopping (\(deployment.status.rawValue))"
    }

    // MARK: - Pieces

    /// "just now", "5 minutes ago", "3 days ago".
    public func relative(_ date: Date?) -> String {
        guard let date else { return "-" }
        let seconds = Int(now.timeIntervalSince(date))
        switch seconds {
        case ..<10: return "just now"
        case ..<60: return "\(seconds) seconds ago"
        case ..<120: return "a minute ago"
        case ..<3600: return "\(seconds / 60) minutes ago"
        case ..<7200: return "an hour ago"
        case ..<86400: return "\(seconds / 3600) hours ago"
        case ..<172_800: return "yesterday"
        default: return "\(seconds / 86400) days ago"
        }
    }

    public func duration(_ milliseconds: Int?) -> String {
        milliseconds.map(DurationText.elapsed(milliseconds:)) ?? "-"
    }

    public func truncate(_ text: String, _ length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length - 1)) + "…"
    }

    /// The API's JSON, indented, with keys in order.
    public static func prettyJSON(_ data: Data) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: data),
            let pretty = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return String(decoding: data, as: UTF8.self) }
        return String(decoding: pretty, as: UTF8.self)
    }
}
