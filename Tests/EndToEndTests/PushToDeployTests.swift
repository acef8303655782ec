import Foundation
import TestSupport
import Testing

/// The real binary, a real bare repository with the real hook, and pushes with the real git.
@Suite(.serialized) struct PushToDeployTests {
    let scratch = ScratchDirectory("slipway-e2e")

    func setUp(_ pipeline: String, app: String = "hello") throws -> (origin: String, work: WorkingRepository) {
        let origin = scratch("\(app).git")
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", origin])
        try writeFile(
            scratch("pipelines/\(app).yml"),
            "repository: \(origin)\ndeploy_to: \(scratch("deploy/\(app)"))\n" + pipeline)
        let work = try WorkingRepository(at: scratch("work-\(app)"))
        try work.git("remote", "add", "origin", origin)
        return (origin, work)
    }

    func push(_ work: WorkingRepository, _ message: String, files: [String: String]) async throws -> String {
        try work.commit(message, files: files)
        // git prints the hook's output (remote: lines) on stderr.
        let (status, output) = try await runProcess(
            "/usr/bin/git", ["-C", work.path, "push", "origin", "HEAD:main"],
            environment: GitCLI.environment.merging(
                ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("GIT_") }
            ) { a, _ in a })
        #expect(status == 0, "\(output)")
        return output
    }

    @Test func pushDeployFailAndRollBackWithTheCLI() async throws {
        let (origin, work) = try setUp(
            """
            build:
              - echo "building $SLIPWAY_COMMIT"
            test:
              - name: no FAIL file
                run: test ! -f FAIL
            activate:
              - echo "live $SLIPWAY_DEPLOYMENT" >> "$SLIPWAY_SHARED_DIR/activations"

            """)
        let daemon = try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")],
            logFile: scratch("daemon.log"))
        let env = ["SLIPWAY_SERVER": daemon.url]
        let install = try await slipway(["hook", "install", origin, "--app", "hello", "--server", daemon.url])
        #expect(install.status == 0, "\(install.output)")
        let refused = try await slipway(["hook", "install", origin, "--app", "hello"])
        #expect(refused.status == 1 && refused.output.contains("--force"))
        // With a token the hook is the owner's alone; --force replaces it (and this test's daemon needs none).
        let hook = origin + "/hooks/post-receive"
        #expect(
            try await slipway([
                "hook", "install", origin, "--app", "hello", "--server", daemon.url, "--token", "t0k3n", "--force",
            ]).status == 0)
        let withToken = try FileManager.default.attributesOfItem(atPath: hook)[.posixPermissions] as? Int
        #expect(withToken == 0o700)
        #expect(try String(contentsOfFile: hook, encoding: .utf8).contains("'t0k3n'"))
        #expect(
            try await slipway(["hook", "install", origin, "--app", "hello", "--server", daemon.url, "--force"]).status
                == 0)
        #expect(try FileManager.default.attributesOfItem(atPath: hook)[.posixPermissions] as? Int == 0o755)

        // 1. A good push: the pusher sees the log and the outcome.
        let first = try await push(work, "first", files: ["index.html": "v1"])
        #expect(first.contains("remote: --> build: echo"))
        #expect(first.contains("remote: building "))
        #expect(first.contains("succeeded"))
        let apps = try await daemon.request("/api/v1/apps/hello").json
        #expect(apps["status"] as? String == "idle")
        let firstID = try #require((apps["current"] as? [String: Any])?["id"] as? Int)
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: scratch("deploy/hello/current"))
                == "releases/\(firstID)")
        #expect(try String(contentsOfFile: scratch("deploy/hello/current/index.html"), encoding: .utf8) == "v1")

        let second = try await push(work, "second", files: ["index.html": "v2"])
        #expect(second.contains("succeeded"))
        let secondID = try #require(
            ((try await daemon.request("/api/v1/apps/hello").json)["current"] as? [String: Any])?["id"] as? Int)

        // 2. A push whose test fails: the pusher is told, and current does not move.
        let failing = try await push(work, "breaks the test", files: ["FAIL": "x"])
        #expect(failing.contains("remote: DEPLOY FAILED: deployment"))
        #expect(failing.contains("failed"))
        #expect(failing.contains("test step 'no FAIL file' failed (exit 1)"))
        let afterFailure = try await daemon.request("/api/v1/apps/hello").json
        #expect(afterFailure["status"] as? String == "failed")
        #expect((afterFailure["last_deployment"] as? [String: Any])?["status"] as? String == "failed")
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: scratch("deploy/hello/current"))
                == "releases/\(secondID)")

        // 3. Roll back with the CLI: to the release before the live one, without building.
        let rollback = try await slipway(["rollback", "hello", "--wait"], environment: env)
        #expect(rollback.status == 0, "\(rollback.output)")
        #expect(rollback.output.contains("rollback to"))
        #expect(rollback.output.contains("succeeded"))
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: scratch("deploy/hello/current"))
                == "releases/\(firstID)")

        let status = try await slipway(["status"], environment: env)
        #expect(status.status == 0)
        #expect(status.output.contains("hello") && status.output.contains("first"))
        let json = try await slipway(["status", "hello", "--json"], environment: env)
        let parsed = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect((parsed?["current"] as? [String: Any])?["id"] as? Int == firstID)
        let releases = try await slipway(["releases", "hello"], environment: env)
        #expect(releases.output.contains("*  \(firstID)"))
        let logs = try await slipway(["logs", String(firstID)], environment: env)
        #expect(logs.output.contains("building"))
        let failedWait = try await slipway(["deploy", "hello", "--wait"], environment: env)
        #expect(failedWait.status == 1, "deploying the failing head again fails, and --wait says so")
    }

    @Test func aKillDuringAStepThenARestartLeavesNothingRunning() async throws {
        let (_, work) = try setUp("build:\n  - echo $$ > \"$SLIPWAY_SHARED_DIR/pgid\"; sleep 300\n", app: "slow")
        try writeFile(
            scratch("pipelines/quick.yml"),
            "repository: \(scratch("slow.git"))\ndeploy_to: \(scratch("deploy/quick"))\nbuild:\n  - \"true\"\n")
        var daemon = try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")],
            logFile: scratch("daemon1.log"))
        try work.commit("slow", files: ["a": "1"])
        try work.git("push", "-q", "origin", "HEAD:main")
        let sha = try work.head()
        let pushed = try await daemon.request(
            "/hooks/push", method: "POST", body: ["app": "slow", "ref": "refs/heads/main", "after": sha])
        let id = try #require(((pushed.json["deployments"] as? [[String: Any]])?.first)?["id"] as? Int)
        try await daemon.wait(for: "/api/v1/deployments/\(id)") {
            ($0["phase"] as? String) == "build" && ($0["status"] as? String) == "running"
        }
        let stepGroup = try #require(try await processID(writtenTo: scratch("deploy/slow/shared/pgid")))

        daemon.signal(SIGKILL)
        _ = await daemon.waitForExit(seconds: 10)
        #expect(kill(-stepGroup, 0) == 0, "the step outlived the daemon")

        daemon = try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")],
            logFile: scratch("daemon2.log"))
        let after = try await daemon.request("/api/v1/deployments/\(id)").json
        #expect(after["status"] as? String == "interrupted")
        #expect(after["error"] as? String == "the daemon stopped during build")
        for _ in 0..<100 where kill(-stepGroup, 0) == 0 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(kill(-stepGroup, 0) != 0, "recovery ended the step's process group")
        let apps = try await daemon.request("/api/v1/apps").json["apps"] as? [[String: Any]] ?? []
        // (The start-up catch-up may be deploying the branch for `quick` meanwhile; that one is new.)
        #expect(
            !apps.contains {
                let last = $0["last_deployment"] as? [String: Any]
                return last?["id"] as? Int == id && last?["status"] as? String == "running"
            }, "the interrupted deployment is not shown running")

        // The next push deploys.
        try work.commit("next", files: ["b": "2"])
        try work.git("push", "-q", "origin", "HEAD:main")
        let next = try await daemon.request(
            "/hooks/push", method: "POST", body: ["app": "quick", "ref": "refs/heads/main", "after": try work.head()])
        let nextID = try #require(((next.json["deployments"] as? [[String: Any]])?.first)?["id"] as? Int)
        try await daemon.wait(for: "/api/v1/deployments/\(nextID)") { ($0["status"] as? String) == "succeeded" }
    }

    @Test func sigtermLetsARunningDeploymentFinishAndSighupReloads() async throws {
        let (_, work) = try setUp("build:\n  - sleep 1\n")
        let daemon = try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")],
            logFile: scratch("daemon.log"))
        try work.commit("one", files: ["a": "1"])
        try work.git("push", "-q", "origin", "HEAD:main")

        // SIGHUP reloads a changed file. The change keeps the file's size, inode and modification time, so the
        // once-a-second check for changed files cannot see it (AppRegistryTests shows that): only the signal can.
        let file = scratch("pipelines/hello.yml")
        var info = stat()
        #expect(stat(file, &info) == 0)
        let original = try String(contentsOfFile: file, encoding: .utf8)
        var broken = "repository: \(scratch("hello.git"))\ndeploy_to: \(scratch("deploy/hello"))\nbranch: [broken\n#"
        broken += String(repeating: "x", count: original.utf8.count - broken.utf8.count - 1) + "\n"
        let handle = try #require(FileHandle(forWritingAtPath: file))
        try handle.write(contentsOf: Data(broken.utf8))
        try handle.close()
        var times = [info.st_atim, info.st_mtim]
        #expect(utimensat(AT_FDCWD, file, &times, 0) == 0)
        daemon.signal(SIGHUP)
        try await daemon.wait(for: "/api/v1/apps/hello") { ($0["status"] as? String) == "config_error" }
        // The build waits for a file that the test makes only after SIGTERM, so the deployment is running when the
        // signal comes, however slow the machine.
        let gate = scratch("gate")
        try writeFile(
            scratch("pipelines/hello.yml"),
            "repository: \(scratch("hello.git"))\ndeploy_to: \(scratch("deploy/hello"))\nbuild:\n"
                + "  - until [ -e \(gate) ]; do sleep 0.05; done\n")
        daemon.signal(SIGHUP)
        try await daemon.wait(for: "/api/v1/apps/hello") { ($0["status"] as? String) == "idle" }

        let started = try await daemon.request("/api/v1/apps/hello/deploy", method: "POST")
        let id = try #require(started.json["id"] as? Int)
        try await daemon.wait(for: "/api/v1/deployments/\(id)") { ($0["phase"] as? String) == "build" }
        daemon.signal(SIGTERM)
        try writeFile(gate, "")
        let status = await daemon.waitForExit(seconds: 30)
        #expect(status == 0, "\(daemon.log)")
        let restarted = try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")],
            logFile: scratch("daemon2.log"))
        let finished = try await restarted.request("/api/v1/deployments/\(id)").json
        #expect(finished["status"] as? String == "succeeded", "the running deployment was allowed to finish")
    }
}

@Suite struct CommandLineTests {
    @Test func exitCodesFollowTheContract() throws {
        let scratch = ScratchDirectory("slipway-cli")
        try writeFile(scratch("pipelines/good.yml"), "repository: /srv/git/good.git\n")
        #expect(try slipway(["validate", scratch("pipelines")]).status == 0)
        try writeFile(scratch("pipelines/bad.yml"), "repository: /srv/git/bad.git\npoll: often\n")
        let invalid = try slipway(["validate", scratch("pipelines")])
        #expect(invalid.status == 1)
        #expect(invalid.output.contains("\(scratch("pipelines/bad.yml")):2:7: 'poll' has a bad duration 'often'"))
        #expect(try slipway(["validate", "--no-such-flag"]).status == 2)
        #expect(try slipway(["frobnicate"]).status == 2)
        let unreachable = try slipway(["status", "--server", "http://127.0.0.1:9"])
        #expect(unreachable.status == 3)
        #expect(unreachable.output.contains("cannot reach the daemon"))
        #expect(
            try slipway(["serve", "--host", "0.0.0.0", "--pipelines", scratch("pipelines")]).status == 2,
            "no token, no public address")
        #expect(try slipway(["--version"]).status == 0)
    }
}

@Suite struct LongRunningTests {
    /// A daemon fetches on every notice for as long as it runs. Run in a process of its own, so that nothing else
    /// in the test process moves its memory: 500 fetches must not grow it by more than noise.
    @Test(arguments: [false, true])
    func repeatedFetchesDoNotGrowMemory(transport: Bool) throws {
        let scratch = ScratchDirectory("slipway-memory")
        let work = try WorkingRepository(at: scratch("work"))
        try work.commit("one", files: ["a": "1"])
        try GitCLI.run(["clone", "-q", "--bare", work.path, scratch("origin.git")])
        let bench = productsDirectory + "/slipway-bench"
        let (status, output) = try runProcess(
            bench,
            ["fetch-memory", "--repo", scratch("origin.git"), "--fetches", "500"] + (transport ? ["--transport"] : []))
        #expect(status == 0, "\(output)")
        let line = try #require(output.split(separator: "\n").last)
        let result = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let growth = try #require(result["growth_kib"] as? Int)
        #expect(growth < 8 * 1024, "500 fetches grew the process by \(growth) KiB")
    }
}
