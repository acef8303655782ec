import ArgumentParser
import Foundation
import SlipwayAPI
import SlipwayClient

/// `--server` and `--token`, shared by every client command.
struct ClientOptions: ParsableArguments {
    @Option(help: "The daemon's URL (or SLIPWAY_SERVER; default http://127.0.0.1:8080).") var server: String?
    @Option(help: "The API token (or SLIPWAY_TOKEN).") var token: String?

    func client() throws(ClientError) -> Client { try Client(server: server, token: token) }
}

/// `slipway status [APP] [--json]`
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show every app, or one app and its recent deployments.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The app to show, by name (default: every app).") var app: String?
    @Flag(help: "Print the API's JSON (for one app: the app, with its recent deployments under 'deployments').")
    var json = false

    /// How many deployments `status APP` shows.
    static let recent = 10

    func run() async throws {
        let client = try options.client()
        guard let app else {
            if json { return print(Views.prettyJSON(try await client.raw("/api/v1/apps"))) }
            let apps = try await client.apps()
            var liveSince: [String: Date] = [:]
            for app in apps { liveSince[app.name] = try await client.liveSince(app) }
            return print(Views().apps(apps, liveSince: liveSince))
        }
        if json {
            let data = try await client.aboutApp(app) { () async throws(ClientError) in
                try await client.appWithDeployments(app, limit: Self.recent)
            }
            return print(Views.prettyJSON(data))
        }
        let summary = try await client.aboutApp(app) { () async throws(ClientError) in try await client.app(app) }
        let deployments = try await client.deployments(app: app, limit: Self.recent)
        print(Views().app(summary, deployments: deployments, liveSince: try await client.liveSince(summary)))
    }
}

/// `slipway deploy APP [--ref REF] [--wait]`
struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy", abstract: "Deploy a branch, tag or commit (default: the app's branch).")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The app to deploy, by name.") var app: String
    @Option(help: "A branch, tag or sha.") var ref: String?
    @Flag(help: "Follow the log; exit 0 only if the deployment succeeds.") var wait = false

    func run() async throws {
        let client = try options.client()
        let deployment = try await client.aboutApp(app) { () async throws(ClientError) in
            try await client.deploy(app: app, ref: ref)
        }
        emit(Views().queued(deployment))
        if wait { try await LogFollower(client: client).waitForSuccess(deployment.id, say: emit) }
    }
}

/// `slipway rollback APP [--to ID|SHA] [--wait]`
struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Make an earlier release live again (default: the newest succeeded one older than the live one).",
        discussion: """
            A release still on disk is switched to without rebuilding: its rollback steps, its activate steps and \
            the health check run. A release that has been pruned is built again from its commit, as a deploy would \
            be, and the command says so.
            """)

    @OptionGroup var options: ClientOptions
    @Argument(help: "The app to roll back, by name.") var app: String
    @Option(help: "A release id, or a commit sha of 7 or more hex digits.") var to: String?
    @Flag(help: "Follow the log; exit 0 only if the rollback succeeds.") var wait = false

    func run() async throws {
        let client = try options.client()
        let target = to.map { text -> API.RollbackRequest.Target in
            if let id = Int64(text), text.count < 7 { return .release(id) }
            return .commit(text)
        }
        let deployment = try await client.aboutApp(app) { () async throws(ClientError) in
            try await client.rollback(app: app, to: target)
        }
        emit(Views().queued(deployment))
        if wait { try await LogFollower(client: client).waitForSuccess(deployment.id, say: emit) }
    }
}

/// `slipway releases APP [--json]`
struct ReleasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "releases", abstract: "List an app's kept releases, newest first.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The app whose releases to list, by name.") var app: String
    @Flag(help: "Print the API's JSON.") var json = false

    func run() async throws {
        let client = try options.client()
        if json {
            let data = try await client.aboutApp(app) { () async throws(ClientError) in
                try await client.raw("/api/v1/apps/\(Client.pathComponent(app))/releases")
            }
            return print(Views.prettyJSON(data))
        }
        let releases = try await client.aboutApp(app) { () async throws(ClientError) in
            try await client.releases(app: app)
        }
        print(Views().releases(releases, of: app))
    }
}

/// `slipway logs ID [--follow]`, and `slipway logs APP --process NAME [--follow]`
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Print a deployment's log, or the output of one of an app's processes.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The deployment id; with --process, the app.") var target: String
    @Option(help: "Print this process's output (a name under the app's 'processes:').") var process: String?
    @Flag(
        name: .shortAndLong,
        help: "Follow the log until the deployment ends (exit 0 only if it succeeded), or a process's output until ^C.")
    var follow = false

    func run() async throws {
        let client = try options.client()
        // On a terminal, step and process output loses the escape sequences that could act on it (colours stay
        // unless NO_COLOR); into a pipe or a file it goes as the daemon wrote it.
        let terminal = Terminal.standardOutput
        let onTerminal = isatty(STDOUT_FILENO) == 1
        let shown: (String) -> String = {
            onTerminal ? TerminalSafeText.filter($0, keepColours: terminal.useColour) : $0
        }
        let write: (Data) -> Void = {
            FileHandle.standardOutput.write(onTerminal ? Data(shown(String(decoding: $0, as: UTF8.self)).utf8) : $0)
        }
        if let process {
            if follow {
                return try await client.followProcessLog(app: target, process: process) { emit(shown($0)) }
            }
            return write(try await client.processLog(app: target, process: process))
        }
        guard let id = Int64(target), id > 0 else {
            throw ClientError.usage("'\(target)' is not a deployment id; for an app's processes add --process NAME")
        }
        if follow { return try await LogFollower(client: client).waitForSuccess(id) { emit(shown($0)) } }
        write(try await client.log(id))
    }
}

/// `slipway ps APP [--json]`
struct PsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List the processes Slipway runs for an app.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The app.") var app: String
    @Flag(help: "Print the API's JSON.") var json = false

    func run() async throws {
        let client = try options.client()
        if json { return print(Views.prettyJSON(try await client.raw("/api/v1/apps/\(app)/processes"))) }
        print(Views().processes(try await client.processes(app: app), of: app))
    }
}

/// `slipway restart APP [PROCESS]`
struct RestartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart",
        abstract: "Start an app's processes (or one of them) again, with no request refused.",
        discussion: "New instances start beside the old ones; once they listen, the public port sends new "
            + "connections to them and the old ones get SIGTERM. It returns once the old ones are gone.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The app.") var app: String
    @Argument(help: "One process of the app; all of them without it.") var process: String?

    func run() async throws {
        let client = try options.client()
        print(Views().processes(try await client.restart(app: app, process: process), of: app))
    }
}

/// `slipway cancel ID`
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a queued or running deployment.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The deployment id.") var id: Int64

    func run() async throws {
        print(Views().cancelled(try await options.client().cancel(id)))
    }
}
