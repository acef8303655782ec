import Foundation
import TestSupport
import Testing

/// `script/install` into a temporary prefix, with the binary this test run built: what it installs, and a push
/// deployed through a hook that calls the installed binary.
@Suite struct InstallTests {
    let scratch = ScratchDirectory("slipway-install")

    var prefix: String { scratch("prefix") }

    func install() async throws -> String {
        let run = try await runProcess(
            repositoryRoot + "/script/install", ["--prefix", prefix, "--binary", productsDirectory + "/slipway"])
        #expect(run.status == 0, "\(run.output)")
        return run.output
    }

    @Test func itInstallsAStrippedBinaryCompletionsDocsAndAUnit() async throws {
        let output = try await install()
        #expect(output.contains("installed \(prefix)/bin/slipway ("), "\(output)")
        let installed = try FileManager.default.attributesOfItem(atPath: prefix + "/bin/slipway")[.size] as? Int ?? 0
        let built = try FileManager.default.attributesOfItem(atPath: productsDirectory + "/slipway")[.size] as? Int ?? 0
        #expect(installed > 0 && installed < built, "stripped: \(installed) bytes, from \(built)")
        let help = try await runProcess(prefix + "/bin/slipway", ["--help"])
        #expect(help.status == 0 && help.output.contains("init"), "\(help.output)")

        for (file, mark) in [
            "share/bash-completion/completions/slipway": "_slipway", "share/zsh/site-functions/_slipway": "#compdef",
            "share/fish/vendor_completions.d/slipway.fish": "complete -c 'slipway'",
        ] {
            let text = try String(contentsOfFile: prefix + "/" + file, encoding: .utf8)
            #expect(text.contains(mark) && text.contains("rollback"), "\(file)")
        }
        #expect(FileManager.default.fileExists(atPath: prefix + "/share/doc/slipway/pipeline.md"))

        let unitFile = prefix + "/lib/systemd/system/slipway.service"
        let unit = try String(contentsOfFile: unitFile, encoding: .utf8)
        #expect(
            unit.contains(
                "ExecStart=\(prefix)/bin/slipway serve --pipelines \(prefix)/etc/slipway/pipelines "
                    + "--state /var/lib/slipway"), "\(unit)")
        #expect(unit.contains("User=slipway") && unit.contains("StateDirectory=slipway"))
        #expect(FileManager.default.fileExists(atPath: prefix + "/lib/sysusers.d/slipway.conf"))
        let env = try FileManager.default.attributesOfItem(atPath: prefix + "/etc/slipway/slipway.env")
        #expect((env[.posixPermissions] as? Int) == 0o600, "the secrets file is for root only")
        if Loopback.hasProgram("systemd-analyze") {
            let verify = try await runProcess("/usr/bin/env", ["systemd-analyze", "verify", unitFile])
            #expect(verify.status == 0, "\(verify.output)")
        }
    }

    @Test func aHookCallsTheInstalledBinaryAndSaysHowToFixItWhenItIsGone() async throws {
        _ = try await install()
        let apps = try AppsOnOrigin("slipway-install-hook", apps: ["hello": "build:\n  - echo built\n"])
        let daemon = try DaemonProcess(
            arguments: ["--pipelines", apps.pipelines, "--state", apps.state], logFile: apps.scratch("daemon.log"))
        let hook = try await runProcess(
            prefix + "/bin/slipway", ["hook", "install", apps.origin, "--app", "hello", "--server", daemon.url])
        #expect(hook.status == 0 && !hook.output.contains("warning"), "an installed binary needs no warning: \(hook)")
        let script = try String(contentsOfFile: apps.origin + "/hooks/post-receive", encoding: .utf8)
        #expect(script.contains("SLIPWAY='\(prefix)/bin/slipway'"), "\(script)")

        try apps.work.commit("First", files: ["a.txt": "1"])
        let push = try await runProcess(
            "/usr/bin/env", ["git", "-C", apps.work.path, "push", "origin", "HEAD:main"])
        #expect(push.output.contains("remote: ==> deployment 1 succeeded"), "\(push.output)")

        try FileManager.default.removeItem(atPath: prefix + "/bin/slipway")
        try apps.work.commit("Second", files: ["a.txt": "2"])
        let orphaned = try await runProcess(
            "/usr/bin/env", ["git", "-C", apps.work.path, "push", "origin", "HEAD:main"])
        let said = orphaned.output.split(separator: "\n").filter { $0.hasPrefix("remote: slipway:") }
        #expect(said.count == 1, "one line: \(orphaned.output)")
        #expect(
            said.first?.contains(
                "remote: slipway: \(prefix)/bin/slipway is gone, so this push was not deployed; reinstall the hook "
                    + "with `slipway hook install \(apps.origin) --app hello --server \(daemon.url) --force`") == true,
            "\(orphaned.output)")
    }
}
