import Foundation
import GitKit
import Pipeline

/// Writes Slipway's git hook into a bare repository (`slipway hook install`): `post-receive`, which deploys after git
/// has accepted a push, or with `gate`, `pre-receive`, which makes git accept a push only if its deployment succeeds.
public struct HookInstaller: Sendable {
    /// The hooks' templates, with `@SLIPWAY@`, `@SERVER@`, `@TOKEN@` and `@APP@` to fill in.
    static let postReceive = String(decoding: PackageResources.post_receive, as: UTF8.self)
    static let preReceive = String(decoding: PackageResources.pre_receive, as: UTF8.self)

    public var bareRepository: String
    public var app: String
    public var server: String
    public var token: String?
    /// The absolute path of the `slipway` binary the hook calls: a git hook cannot count on `PATH`.
    public var binary: String
    /// Replace a hook that is already there.
    public var force: Bool
    /// Install the gate (`pre-receive`) rather than the notice (`post-receive`).
    public var gate: Bool

    public init(
        bareRepository: String, app: String, server: String, token: String?, binary: String, force: Bool,
        gate: Bool = false
    ) {
        self.bareRepository = bareRepository
        self.app = app
        self.server = server
        self.token = token
        self.binary = binary
        self.force = force
        self.gate = gate
    }

    /// The hook's file name in `hooks/`.
    public var hookName: String { gate ? "pre-receive" : "post-receive" }

    /// Installs the hook and returns the path it was written to. The file appears whole (it is written under a
    /// temporary name and renamed), and with a token it is readable by its owner only, from the moment it exists.
    @discardableResult
    public func install() throws(ClientError) -> String {
        guard isValidAppName(app) else { throw .usage("'\(app)' is not a valid app name") }
        let repository: Repository
        do {
            repository = try Repository(at: bareRepository)
        } catch {
            throw .failed("\(bareRepository) is not a git repository: \(error.message)")
        }
        guard repository.isBare else { throw .failed("\(bareRepository) is not a bare repository") }
        let hooks = URL(fileURLWithPath: repository.gitDirectory).appendingPathComponent("hooks")
        let target = hooks.appendingPathComponent(hookName).path
        if FileManager.default.fileExists(atPath: target) && !force {
            throw .failed("\(target) already exists; use --force to replace it")
        }
        do {
            try FileManager.default.createDirectory(at: hooks, withIntermediateDirectories: true)
        } catch {
            throw .failed("cannot create \(hooks.path): \(error.localizedDescription)")
        }
        let mode: mode_t = (token ?? "").isEmpty ? 0o755 : 0o700
        try Self.writeAtomically(script, to: target, mode: mode)
        // The gate does what Slipway's own post-receive would; one of Slipway's, left there, would only repeat it.
        let other = hooks.appendingPathComponent(gate ? "post-receive" : "pre-receive").path
        if let text = try? String(contentsOfFile: other, encoding: .utf8),
            text.contains("installed by `slipway hook install")
        {
            unlink(other)
        }
        return target
    }

    /// The hook's text, with every value a single-quoted shell word.
    public var script: String {
        (gate ? Self.preReceive : Self.postReceive)
            .replacingOccurrences(of: "@SLIPWAY@", with: Self.quote(binary))
            .replacingOccurrences(of: "@SERVER@", with: Self.quote(server))
            .replacingOccurrences(of: "@TOKEN@", with: Self.quote(token ?? ""))
            .replacingOccurrences(of: "@APP@", with: Self.quote(app))
    }

    /// `'…'` with every `'` written as `'\''`: nothing inside is expanded by the shell, newlines included.
    public static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// A warning when the hook would call a `slipway` in a build folder (`.build/`), which a rebuild, a clean or a
    /// move of the clone takes away: the hook then fails on every push, until it is installed again.
    public static func buildFolderWarning(binary: String) -> String? {
        guard binary.contains("/.build/") else { return nil }
        return "the hook calls \(binary), in a build folder; install slipway (script/install) and run this again "
            + "with the installed one and --force, so that a rebuild or a clean does not break the hook"
    }

    /// This process's own binary, by absolute path.
    public static func executablePath() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.resolvingSymlinksInPath().path
    }

    private static func writeAtomically(_ text: String, to target: String, mode: mode_t) throws(ClientError) {
        let temporary = (target as NSString).deletingLastPathComponent + "/.hook.slipway-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .failed("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        chmod(temporary, mode)  // the umask may have taken bits from the mode
        guard written == bytes.count, rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .failed("cannot write \(target): \(reason)")
        }
    }
}
