import ArgumentParser
import Foundation
import Pipeline
import SlipwayClient

/// `slipway hook install`.
struct HookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook", abstract: "Manage the git hook that starts deploys on push.",
        subcommands: [HookInstallCommand.self])
}

struct HookInstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Write Slipway's git hook into a bare repository.",
        discussion: """
            Without --gate, a post-receive hook: git accepts every push, and the hook deploys it and shows the log. \
            With --gate, a pre-receive hook: a push to the app's branch waits for its deployment and is refused \
            unless it succeeds. The hook calls this slipway binary by its absolute path, so install the hook with the \
            installed slipway (script/install), not one in a build folder. The app must be one the daemon at \
            --server has (checked when the daemon can be reached). With a token, the hook file is readable by its \
            owner only.
            """)

    @Argument(help: "The bare repository.") var bareRepo: String
    @Option(help: "The app to deploy on push.") var app: String
    @OptionGroup var options: ClientOptions
    @Flag(help: "Replace an existing hook.") var force = false
    @Flag(help: "Refuse a push to the app's branch unless its deployment succeeds (a pre-receive hook).")
    var gate = false

    func run() async throws {
        let client = try options.client()
        let server = client.server.absoluteString
        let binary = HookInstaller.executablePath()
        do {
            let names = try await client.apps().map(\.name)
            guard names.contains(app) else { throw ClientError.failed(Client.unknownApp(app, among: names)) }
        } catch ClientError.unreachable(let reason) {
            emitError("slipway: warning: the app name is not checked, since \(reason)")
        }
        let path = try HookInstaller(
            bareRepository: bareRepo, app: app, server: server, token: client.token, binary: binary, force: force,
            gate: gate
        ).install()
        let what = gate ? "is accepted only if it deploys" : "deploys"
        print("installed \(path): a push to \(bareRepo) \(what) \(app) through \(server)")
        if let warning = HookInstaller.buildFolderWarning(binary: binary) { emitError("slipway: warning: \(warning)") }
    }
}

/// `slipway notify --app APP`: the hook's helper.
struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract:
            "Read 'old new ref' lines on stdin (as a post-receive hook gets them), start the deploy and follow its log."
    )

    @OptionGroup var options: ClientOptions
    @Option(help: "The app the repository deploys.") var app: String
    @Flag(help: "Gate the push (the pre-receive hook): exit non-zero unless its deployment succeeds.") var gate = false
    @Option(help: "With --gate, how long a push may wait for its deployment (like 30m, 1h).") var timeout = "1h"

    func run() async throws {
        var lines: [String] = []
        while let line = readLine() { lines.append(line) }
        let client = try options.client()
        guard gate else { return try await PushNotifier(client: client, app: app).notify(lines, say: emit) }
        guard let limit = DurationText.parse(timeout) else {
            throw ClientError.usage("--timeout '\(timeout)' is not a duration")
        }
        // A pusher who has gone must not kill the gate before it cancels the deployment.
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        try await PushGate(
            client: client, app: app, objectDirectories: PushGate.quarantine(in: environment), timeout: limit
        ).admit(lines, say: emitChecked)
    }
}
