import Foundation
import TestSupport
import Testing

/// The command line as a newcomer meets it in the first hour: each rough edge of issue 22, as the exact output.
@Suite struct FirstHourTests {
    /// `git push` in `work`, with everything git and the hook printed.
    func push(_ apps: AppsOnOrigin, _ arguments: String...) async throws -> String {
        try await runProcess("/usr/bin/env", ["git", "-C", apps.work.path, "push"] + arguments).output
    }

    @Test func aMistypedCommandGetsASuggestion() async throws {
        let typo = try await slipway(["statsu"])
        #expect(typo.status == 2)
        #expect(typo.output == "slipway: unknown command 'statsu'; did you mean 'status'? (see slipway --help)\n")
        let nested = try await slipway(["hook", "instal", "x", "--app", "a"])
        #expect(nested.output.hasPrefix("slipway: unknown command 'hook instal'; did you mean 'hook install'?"))
        let far = try await slipway(["zzzzzz"])
        #expect(far.output.hasPrefix("slipway: unknown command 'zzzzzz' (the commands are: serve, status, "), "\(far)")
        #expect(try await slipway(["--generate-completion-script", "bash"]).status == 0, "options are not commands")
    }

    @Test func theHelpNamesWhatEachArgumentIs() async throws {
        let help = try await slipway(["deploy", "--help"])
        #expect(help.output.contains("The app to deploy, by name."), "\(help.output)")
        #expect(!help.output.contains("The app.") && !help.output.contains("An app."), "\(help.output)")
        // ArgumentParser wraps the text at 80 columns.
        let rollback = try await slipway(["rollback", "--help"]).output.split(whereSeparator: \.isWhitespace)
            .joined(separator: " ")
        #expect(rollback.contains("A release still on disk is switched to without rebuilding"), "\(rollback)")
        #expect(rollback.contains("A release that has been pruned is built again from its commit"), "\(rollback)")
    }

    @Test func initWritesAFileThatValidatesAsWritten() async throws {
        let scratch = ScratchDirectory("slipway-init")
        let made = try await runProcess(
            productsDirectory + "/slipway", ["init", "hello", "--repository", "repos/hello.git"],
            directory: scratch.path)
        #expect(made.status == 0, "\(made.output)")
        #expect(made.output.hasPrefix("wrote ./pipelines/hello.yml: every key with its default"), "\(made.output)")
        let file = try String(contentsOfFile: scratch("pipelines/hello.yml"), encoding: .utf8)
        #expect(file.contains("\nrepository: \(scratch.path)/repos/hello.git\n"), "made absolute: \(file)")
        let check = try await slipway(["validate", scratch("pipelines")])
        #expect(check.status == 0 && check.output == "1 pipeline file, 0 errors\n", "\(check.output)")
        let again = try await runProcess(productsDirectory + "/slipway", ["init", "hello"], directory: scratch.path)
        #expect(again.status == 1 && again.output.contains("already exists; use --force to replace it"))
        let bad = try await slipway(["init", "Hello World"])
        #expect(bad.status == 2 && bad.output.contains("'Hello World' is not a valid app name"), "\(bad.output)")
    }

    @Test func validateOnAFolderOfYamlFilesFails() async throws {
        let scratch = ScratchDirectory("slipway-yaml")
        try writeFile(scratch("pipelines/hello.yaml"), "repository: /srv/git/hello.git\n")
        let check = try await slipway(["validate", scratch("pipelines")])
        #expect(check.status == 1)
        #expect(check.output.contains("no pipeline files (they are named <app>.yml); hello.yaml ends in .yaml"))
    }

    @Test func theClientSaysWhatHappenedAndNothingTwice() async throws {
        let apps = try AppsOnOrigin(
            "slipway-first-hour",
            apps: [
                "hello": """
                keep_releases: 1
                build:
                  - echo built
                health:
                  command: "true"
                """
            ])
        let daemon = try DaemonProcess(
            arguments: ["--pipelines", apps.pipelines, "--state", apps.state], logFile: apps.scratch("daemon.log"))
        let server = ["--server", daemon.url]

        let unknown = try await slipway(["hook", "install", apps.origin, "--app", "helo"] + server)
        #expect(unknown.status == 1)
        #expect(unknown.output == "slipway: there is no app named 'helo'; did you mean 'hello'?\n")
        #expect(!FileManager.default.fileExists(atPath: apps.origin + "/hooks/post-receive"))
        #expect(try await slipway(["status", "helo"] + server).output.contains("did you mean 'hello'?"))
        #expect(try await slipway(["hook", "install", apps.origin, "--app", "hello"] + server).status == 0)

        // The pusher reads each thing once: the deploy's heading, the health check's end, the outcome.
        let first = try apps.work.commit("First", files: ["a.txt": "1"])
        let pushed = try await push(apps, "origin", "HEAD:main")
        let said = pushed.split(separator: "\n").filter { $0.hasPrefix("remote: ") }
        #expect(said.filter { $0.contains("succeeded") }.count == 1, "one outcome line: \(pushed)")
        #expect(said.filter { $0.contains("health: ") }.count == 2, "the check's start and its end: \(pushed)")
        #expect(said.contains { $0.hasPrefix("remote: <-- health: passed on try 1, in ") }, "\(pushed)")
        #expect(said.filter { $0.contains("deployment 1") && $0.contains("deploy") }.count >= 1)
        #expect(!pushed.contains("as deployment 1"), "\(pushed)")

        let tag = try await push(apps, "origin", "HEAD:refs/tags/v1")
        #expect(
            tag.contains(
                "remote: slipway: nothing to deploy for hello: v1 is a tag, and tags are not deployed on push "
                    + "(slipway deploy hello --ref v1 does)"), "\(tag)")

        try apps.work.commit("Second", files: ["a.txt": "2"])
        #expect(try await push(apps, "origin", "HEAD:main").contains("remote: ==> deployment 2 succeeded"))

        let json = try await slipway(["status", "hello", "--json"] + server)
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        let deployments = object?["deployments"] as? [[String: Any]]
        #expect(object?["name"] as? String == "hello" && deployments?.map { $0["id"] as? Int } == [2, 1], "\(json)")

        // With keep_releases: 1 the first release is gone: the rollback says that it builds.
        let rollback = try await slipway(["rollback", "hello", "--to", String(first.prefix(7)), "--wait"] + server)
        #expect(rollback.status == 0, "\(rollback.output)")
        #expect(
            rollback.output.hasPrefix(
                "deployment 3: rollback to \(first.prefix(7)) First (queued); its release is no longer on disk, so the "
                    + "commit is built again (build, test, migrate)"), "\(rollback.output)")
        #expect(rollback.output.contains(": its release is no longer on disk, so it is built again"))
        #expect(rollback.output.filter { $0 == "\n" }.count > 3, "the log follows")
        #expect(!rollback.output.contains("deployment 3 succeeded\n"), "said once, by the log: \(rollback.output)")
    }

    @Test func theReleasesTableMarksTheReleaseARollbackMadeLive() async throws {
        let apps = try AppsOnOrigin("slipway-live-since", apps: ["hello": "build:\n  - echo built\n"])
        let daemon = try DaemonProcess(
            arguments: ["--pipelines", apps.pipelines, "--state", apps.state], logFile: apps.scratch("daemon.log"))
        let server = ["--server", daemon.url]
        for n in 1...2 {
            try apps.push("Commit \(n)")
            #expect(try await slipway(["deploy", "hello", "--wait"] + server).status == 0)
        }
        #expect(try await slipway(["rollback", "hello", "--wait"] + server).status == 0)
        let status = try await slipway(["status", "hello"] + server)
        #expect(status.output.contains("live        release 1: "), "\(status.output)")
        // When it went live (the rollback's moment, not the build's) is LiveSince's, tested in FirstHourViewsTests.
        #expect(status.output.contains("went live just now"), "\(status)")
        let releases = try await slipway(["releases", "hello"] + server)
        let lines = releases.output.split(separator: "\n")
        #expect(lines.count == 3 && lines[1].hasPrefix("   2  ") && lines[2].hasPrefix("*  1  "), "\(releases.output)")
    }
}
