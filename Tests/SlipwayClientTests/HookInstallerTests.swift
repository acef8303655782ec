import Foundation
import SlipwayClient
import TestSupport
import Testing

/// The hook installer writes values from the command line into a shell script. Whatever they hold, the installed
/// hook must hand them to `slipway notify` exactly as given, and the shell must expand none of them.
@Suite struct HookInstallerTests {
    static let awkward = [
        "plain", "with space", "it's", "$HOME and $(touch pwned) and `touch pwned`", "new\nline", "'", "''", "\\",
        "quote\"d", "tab\there",
    ]

    @Test(arguments: awkward) func quotedValuesReachTheHookAsGiven(value: String) throws {
        let scratch = ScratchDirectory("slipway-hook")
        // A stand-in for the slipway binary, in a folder whose name is itself awkward, that records what it got.
        let folder = scratch(
            "bin " + value.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "\n", with: "_"))
        let binary = folder + "/slip'way $x"
        try writeFile(
            binary,
            """
            #!/bin/sh
            printf '%s\\0' "$@" > "$OUT/args"
            printf '%s\\0' "$SLIPWAY_SERVER" "$SLIPWAY_TOKEN" > "$OUT/env"
            """, executable: true)
        let installer = HookInstaller(
            bareRepository: scratch("repo.git"), app: "hello", server: "http://127.0.0.1:8080/" + value, token: value,
            binary: binary, force: false)
        try writeFile(scratch("hook"), installer.script, executable: true)
        let run = try runProcess(
            "/bin/sh", [scratch("hook")], environment: ["OUT": scratch.path, "PATH": "/usr/bin:/bin"], input: "",
            directory: scratch.path)
        #expect(run.status == 0, "\(run.output)")
        let arguments = try String(contentsOfFile: scratch("args"), encoding: .utf8).split(separator: "\0").map(
            String.init)
        #expect(arguments == ["notify", "--app", "hello"])
        let environment = try String(contentsOfFile: scratch("env"), encoding: .utf8)
            .split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
        #expect(environment.prefix(2) == ["http://127.0.0.1:8080/" + value, value])
        #expect(!FileManager.default.fileExists(atPath: scratch("pwned")))
    }

    @Test func installingWritesTheHookIntoABareRepositoryAndRefusesToReplaceIt() throws {
        let scratch = ScratchDirectory("slipway-hook")
        try GitCLI.run(["init", "-q", "--bare", scratch("repo.git")])
        var installer = HookInstaller(
            bareRepository: scratch("repo.git"), app: "hello", server: "http://127.0.0.1:8080", token: "tok",
            binary: "/usr/local/bin/slipway", force: false)
        let path = try installer.install()
        #expect(path == scratch("repo.git") + "/hooks/post-receive")
        var info = stat()
        stat(path, &info)
        #expect(info.st_mode & 0o777 == 0o700, "with a token, only the owner may read the hook")
        #expect(throws: ClientError.failed("\(path) already exists; use --force to replace it")) {
            try installer.install()
        }
        installer.force = true
        installer.token = nil
        try installer.install()
        stat(path, &info)
        #expect(info.st_mode & 0o777 == 0o755)
    }

    @Test func badTargetsAreRefusedInWords() throws {
        let scratch = ScratchDirectory("slipway-hook")
        try GitCLI.run(["init", "-q", scratch("work")])
        func installer(_ repository: String, app: String = "hello") -> HookInstaller {
            HookInstaller(
                bareRepository: repository, app: app, server: "http://127.0.0.1:8080", token: nil, binary: "/bin/true",
                force: false)
        }
        #expect(throws: ClientError.usage("'Bad App' is not a valid app name")) {
            try installer(scratch("work"), app: "Bad App").install()
        }
        #expect(throws: ClientError.failed("\(scratch("work")) is not a bare repository")) {
            try installer(scratch("work")).install()
        }
        #expect(throws: ClientError.self) { try installer(scratch("nothing-here")).install() }
    }
}
