import ArgumentParser
import Foundation
import GitKit
import Pipeline

/// `slipway hook install`.
struct HookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook", abstract: "Manage the git hook that starts deploys on push.", subcommands: [HookInstallCommand.self])
}

struct HookInstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Write Slipway's post-receive hook into a bare repository.",
        discussion: "The hook calls this slipway binary by its absolute path. With a token, the hook file is readable by its owner only.")

    @Argument(help: "The bare repository.") var bareRepo: String
    @Option(help: "The app to deploy on push.") var app: String
    @OptionGroup var options: ClientOptions
    @Flag(help: "Replace an existing post-receive hook.") var force = false

    func run() throws {
        guard isValidAppName(app) else { throw CommandFailure.usage("'\(app)' is not a valid app name") }
        let repository: Repository
        do {
            repository = try Repository(at: bareRepo)
        } catch {
            throw CommandFailure.failed("\(bareRepo) is not a git repository: \(error.message)")
        }
        guard repository.isBare else { throw CommandFailure.failed("\(bareRepo) is not a bare repository") }
        let client = try options.client()
        let serverURL = client.server.absoluteString
        let tokenValue = client.token ?? ""

        let hooks = URL(fileURLWithPath: repository.gitDirectory).appendingPathComponent("hooks")
        let target = hooks.appendingPathComponent("post-receive")
        if FileManager.default.fileExists(atPath: target.path) && !force {
            throw CommandFailure.failed("\(target.path) already exists; use --force to replace it")
        }
        let script = HookScript.render(binary: Self.executablePath(), server: serverURL, token: tokenValue, app: app)
        try FileManager.default.createDirectory(at: hooks, withIntermediateDirectories: true)
        let temporary = hooks.appendingPathComponent(".post-receive.slipway-\(getpid())")
        // The token is a credential: with one, only the owner may read the hook, from the moment the file exists.
        let mode: mode_t = tokenValue.isEmpty ? 0o755 : 0o700
        unlink(temporary.path)
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw CommandFailure.failed("cannot write \(temporary.path): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(script.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        chmod(temporary.path, mode)  // the umask may have taken bits from 0755
        guard written == bytes.count, rename(temporary.path, target.path) == 0 else {
            unlink(temporary.path)
            throw CommandFailure.failed("cannot write \(target.path): \(String(cString: strerror(errno)))")
        }
        print("installed \(target.path): a push to \(bareRepo) deploys \(app) through \(serverURL)")
    }

    /// This binary's absolute path, which is what the hook must call.
    static func executablePath() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.resolvingSymlinksInPath().path
    }
}

/// The `hooks/post-receive` template, with its placeholders filled in as single-quoted shell words.
enum HookScript {
    static let template = String(decoding: PackageResources.post_receive, as: UTF8.self)

    static func render(binary: String, server: String, token: String, app: String) -> String {
        template
            .replacingOccurrences(of: "@SLIPWAY@", with: quote(binary))
            .replacingOccurrences(of: "@SERVER@", with: quote(server))
            .replacingOccurrences(of: "@TOKEN@", with: quote(token))
            .replacingOccurrences(of: "@APP@", with: quote(app))
    }

    /// `'…'` with every `'` written as `'\''`: nothing inside is expanded by the shell.
    static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// `slipway notify --app APP`: the hook's helper.
struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Read 'old new ref' lines on stdin (as a post-receive hook gets them), start the deploy and follow its log.")

    @OptionGroup var options: ClientOptions
    @Option(help: "The app the repository deploys.") var app: String

    func run() async throws {
        let client = try options.client()
        var deployments: [[String: Any]] = []
        while let line = readLine() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard parts.count == 3 else { continue }
            do {
                let answer = try await client.post(
                    "/hooks/push", body: ["app": app, "ref": parts[2], "before": parts[0], "after": parts[1]])
                deployments += (answer["deployments"] as? [[String: Any]]) ?? []
            } catch let failure as CommandFailure {
                emit("slipway: the push was received, but no deploy started: \(failure.message)")
                throw CommandFailure(code: failure.code, message: "")
            }
        }
        guard !deployments.isEmpty else {
            emit("slipway: nothing to deploy for \(app) (another branch, or no changed file matches its paths)")
            return
        }
        var failed = false
        for deployment in deployments {
            let id = deployment.string("id")
            emit("slipway: deploying \(app) \(deployment.string("short_commit")) as deployment \(id)")
            do {
                try await LogFollower.follow(client, id)
            } catch let failure as CommandFailure where failure.code == Exit.failure {
                failed = true
            }
        }
        if failed { throw CommandFailure(code: Exit.failure, message: "") }
    }
}
