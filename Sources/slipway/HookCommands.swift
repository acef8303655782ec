import ArgumentParser
import Foundation
import SlipwayClient

/// `slipway hook install`.
struct HookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook", abstract: "Manage the git hook that starts deploys on push.",
        subcommands: [HookInstallCommand.self])
}

struct HookInstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Write Slipway's post-receive hook into a bare repository.",
        discussion:
            "The hook calls this slipway binary by its absolute path. With a token, the hook file is readable by its owner only."
    )

    @Argument(help: "The bare repository.") var bareRepo: String
    @Option(help: "The app to deploy on push.") var app: String
    @OptionGroup var options: ClientOptions
    @Flag(help: "Replace an existing post-receive hook.") var force = false

    func run() throws {
        let client = try options.client()
        let path = try HookInstaller(
            bareRepository: bareRepo, app: app, server: client.server.absoluteString, token: client.token,
            binary: HookInstaller.executablePath(), force: force
        ).install()
        print("installed \(path): a push to \(bareRepo) deploys \(app) through \(client.server.absoluteString)")
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

    func run() async throws {
        var lines: [String] = []
        while let line = readLine() { lines.append(line) }
        try await PushNotifier(client: try options.client(), app: app).notify(lines, say: emit)
    }
}
