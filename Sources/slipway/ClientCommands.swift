import ArgumentParser
import Foundation

/// `--server` and `--token`, shared by every client command.
struct ClientOptions: ParsableArguments {
    @Option(help: "The daemon's URL (or SLIPWAY_SERVER; default http://127.0.0.1:8080).") var server: String?
    @Option(help: "The API token (or SLIPWAY_TOKEN).") var token: String?

    func client() throws -> Client { try Client(server: server, token: token) }
}

/// `slipway status [APP] [--json]`
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show every app, or one app and its recent deployments.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "An app.") var app: String?
    @Flag(help: "Print the API's JSON.") var json = false

    func run() async throws {
        let client = try options.client()
        guard let app else {
            let data = try await client.get("/api/v1/apps")
            if json { return print(Output.json(data)) }
            let apps = (try Client.object(data)["apps"] as? [[String: Any]]) ?? []
            if apps.isEmpty { return print("no apps; add pipeline files to the daemon's --pipelines folder") }
            let rows = apps.map { app -> [String] in
                let current = app.object("current")
                return [
                    app.string("name"), app.string("status"),
                    current.map { "\($0.string("short_commit")) \(Output.truncate($0.string("message"), 40))" } ?? "-",
                    Output.relative(current?["created_at"]), (app.int("queued") ?? 0) > 0 ? "\(app.int("queued")!) queued" : "",
                ]
            }
            return print(Output.table(["APP", "STATUS", "LIVE", "DEPLOYED", "QUEUE"], rows, statusColumn: 1))
        }
        let data = try await client.get("/api/v1/apps/\(app)")
        if json { return print(Output.json(data)) }
        let history = try await client.get("/api/v1/apps/\(app)/deployments?limit=10")
        let summary = try Client.object(data)
        print("\(Output.bold(summary.string("name")))  \(Output.colour(summary.string("status"), for: summary.string("status")))")
        print("repository  \(summary.string("repository")) (\(summary.string("branch")))")
        print("deploy_to   \(summary.string("deploy_to"))")
        if let current = summary.object("current") {
            print("live        release \(current.string("id")): \(current.string("short_commit")) \(current.string("message")) by \(current.string("author")), \(Output.relative(current["created_at"]))")
        } else {
            print("live        nothing yet")
        }
        if let error = summary["config_error"] as? String { print("config      \(error)") }
        let deployments = (try Client.object(history)["deployments"] as? [[String: Any]]) ?? []
        guard !deployments.isEmpty else { return }
        print("")
        print(Output.table(
            ["ID", "KIND", "TRIGGER", "COMMIT", "STATUS", "DURATION", "WHEN", "MESSAGE"],
            deployments.map {
                [
                    $0.string("id"), $0.string("kind"), $0.string("trigger"), $0.string("short_commit"), $0.string("status"),
                    Output.duration($0["duration_ms"]), Output.relative($0["created_at"]), Output.truncate($0.string("message"), 50),
                ]
            }, statusColumn: 4))
    }
}

/// `slipway deploy APP [--ref REF] [--wait]`
struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deploy", abstract: "Deploy a branch, tag or commit (default: the app's branch).")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The app.") var app: String
    @Option(help: "A branch, tag or sha.") var ref: String?
    @Flag(help: "Follow the log; exit 0 only if the deployment succeeds.") var wait = false

    func run() async throws {
        let client = try options.client()
        let deployment = try await client.post("/api/v1/apps/\(app)/deploy", body: ref.map { ["ref": $0] } ?? [:])
        emit("deployment \(deployment.string("id")): \(deployment.string("kind")) \(deployment.string("short_commit")) \(deployment.string("message")) (\(deployment.string("status")))")
        if wait { try await LogFollower.follow(client, deployment.string("id")) }
    }
}

/// `slipway rollback APP [--to ID|SHA] [--wait]`
struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Go back to a kept release without rebuilding (default: the newest succeeded one older than the live one).")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The app.") var app: String
    @Option(help: "A release id, or a commit sha of 7 or more hex digits.") var to: String?
    @Flag(help: "Follow the log; exit 0 only if the rollback succeeds.") var wait = false

    func run() async throws {
        let client = try options.client()
        var body: [String: Any] = [:]
        if let to {
            if let id = Int(to), to.count < 7 { body["to"] = id } else { body["to"] = to }
        }
        let deployment = try await client.post("/api/v1/apps/\(app)/rollback", body: body)
        emit("deployment \(deployment.string("id")): rollback to \(deployment.string("short_commit")) \(deployment.string("message")) (\(deployment.string("status")))")
        if wait { try await LogFollower.follow(client, deployment.string("id")) }
    }
}

/// `slipway releases APP [--json]`
struct ReleasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "releases", abstract: "List an app's kept releases, newest first.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The app.") var app: String
    @Flag(help: "Print the API's JSON.") var json = false

    func run() async throws {
        let data = try await options.client().get("/api/v1/apps/\(app)/releases")
        if json { return print(Output.json(data)) }
        let releases = (try Client.object(data)["releases"] as? [[String: Any]]) ?? []
        if releases.isEmpty { return print("\(app) has no releases on disk") }
        print(Output.table(
            ["", "ID", "COMMIT", "CREATED", "AUTHOR", "MESSAGE"],
            releases.map {
                [
                    ($0["active"] as? Bool) == true ? "*" : "", $0.string("id"), $0.string("short_commit"),
                    Output.relative($0["created_at"]), $0.string("author"), Output.truncate($0.string("message"), 60),
                ]
            }))
    }
}

/// `slipway logs ID [--follow]`
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print a deployment's log.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The deployment id.") var id: Int
    @Flag(name: .shortAndLong, help: "Follow the log until the deployment ends; exit 0 only if it succeeded.") var follow = false

    func run() async throws {
        let client = try options.client()
        if follow { return try await LogFollower.follow(client, "\(id)") }
        let data = try await client.send("/api/v1/deployments/\(id)/log", accept: "text/plain")
        FileHandle.standardOutput.write(data)
    }
}

/// `slipway cancel ID`
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a queued or running deployment.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The deployment id.") var id: Int

    func run() async throws {
        let deployment = try await options.client().post("/api/v1/deployments/\(id)/cancel")
        let status = deployment.string("status")
        print(status == "cancelled" ? "deployment \(id) cancelled" : "deployment \(id) is stopping (\(status))")
    }
}

enum LogFollower {
    /// Prints every line of the deployment's log as it comes, then the outcome; throws unless it succeeded
    /// (`--wait`, `logs --follow`, and `notify` in the hook).
    static func follow(_ client: Client, _ id: String) async throws {
        var final: [String: Any]?
        try await client.stream("/api/v1/deployments/\(id)/log") { event, data in
            if event == "end" {
                final = try? Client.object(Data(data.utf8))
                return false
            }
            emit(data)
            return true
        }
        guard let deployment = final else { throw CommandFailure.failed("the log ended before the deployment did") }
        let status = deployment.string("status")
        var line = "deployment \(id) \(Output.colour(status, for: status))"
        if let error = deployment["error"] as? String { line += ": \(error)" }
        if let back = deployment["rolled_back_to"] as? Int { line += " (rolled back to release \(back))" }
        emit(line)
        if status != "succeeded" { throw CommandFailure(code: Exit.failure, message: "") }
    }
}

/// Writes a line straight to standard output, unbuffered: a pusher waiting on `remote:` lines must see each one as
/// it comes, and in order with everything else written this way.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
