import Foundation
import TestSupport
import Testing

/// `hook install --gate`: a push to the app's branch is accepted only if its deployment succeeds, all of it. The
/// real binary, the real git, over a local path and over a real sshd.
@Suite(.serialized) struct GatedPushTests {
    let scratch = ScratchDirectory("slipway-gate")

    /// A test that fails when the commit has a FAIL file, a health check that fails when it has SICK, and a build
    /// that waits while it has HANG (for Ctrl-C).
    static let pipeline = """
        build:
          - echo "building $SLIPWAY_COMMIT"
          - while [ -f HANG ]; do sleep 0.05; done
        test:
          - name: no FAIL file
            run: test ! -f FAIL
        activate:
          - echo "live $SLIPWAY_DEPLOYMENT" >> "$SLIPWAY_SHARED_DIR/activations"
        health:
          command: test ! -f SICK
          timeout: 2s
          interval: 100ms

        """

    struct Setup {
        let origin: String
        let work: WorkingRepository
        let daemon: DaemonProcess
    }

    func setUp() throws -> Setup {
        let origin = scratch("hello.git")
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", origin])
        try writeFile(
            scratch("pipelines/hello.yml"), "repository: \(origin)\ndeploy_to: \(scratch("deploy"))\n" + Self.pipeline)
        let work = try WorkingRepository(at: scratch("work"))
        try work.git("remote", "add", "origin", origin)
        let daemon = try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")],
            logFile: scratch("daemon.log"))
        let install = try slipway(["hook", "install", origin, "--app", "hello", "--server", daemon.url, "--gate"])
        #expect(install.status == 0, "\(install.output)")
        #expect(FileManager.default.isExecutableFile(atPath: origin + "/hooks/pre-receive"))
        return Setup(origin: origin, work: work, daemon: daemon)
    }

    /// `git push` with the hook's output (the remote: lines).
    func push(
        _ work: WorkingRepository, _ remote: String = "origin", environment: [String: String] = [:]
    ) async throws
        -> (status: Int32, output: String)
    {
        try await runProcess(
            "/usr/bin/git", ["-C", work.path, "push", remote, "HEAD:main"],
            environment: GitCLI.environment.merging(
                ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("GIT_") }
            ) { a, _ in a }.merging(environment) { $1 })
    }

    func branch(_ origin: String) throws -> String? {
        try? GitCLI.run(["--git-dir", origin, "rev-parse", "--verify", "-q", "refs/heads/main"])
    }

    func current() -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: scratch("deploy/current"))
    }

    @Test func aGatedPushIsAcceptedOnlyIfItsDeploymentSucceeds() async throws {
        let setup = try setUp()
        let work = setup.work

        // A good push is live when git push returns.
        let good = try work.commit("good", files: ["index.html": "v1"])
        let accepted = try await push(work)
        #expect(accepted.status == 0, "\(accepted.output)")
        #expect(accepted.output.contains("remote: building \(good)"))
        #expect(accepted.output.contains("the push is accepted"))
        #expect(try branch(setup.origin) == good)
        let live = try #require(current())
        #expect(try String(contentsOfFile: scratch("deploy/current/index.html"), encoding: .utf8) == "v1")

        // A failing test: refused, the branch does not move, current is untouched.
        try work.commit("fails its test", files: ["FAIL": "x"])
        let failing = try await push(work)
        #expect(failing.status != 0, "\(failing.output)")
        #expect(failing.output.contains("test step 'no FAIL file' failed (exit 1)"))
        #expect(failing.output.contains("the push is refused"))
        #expect(failing.output.contains("[remote rejected]"))
        #expect(try branch(setup.origin) == good)
        #expect(current() == live)
        try work.git("reset", "-q", "--hard", "HEAD~1")

        // A failing health check: refused, and current is back on what was live.
        try work.commit("unhealthy", files: ["SICK": "x"])
        let sick = try await push(work)
        #expect(sick.status != 0, "\(sick.output)")
        #expect(sick.output.contains("the health check failed"))
        #expect(sick.output.contains("rolled back to release"))
        #expect(try branch(setup.origin) == good)
        #expect(current() == live)
        let status = try await setup.daemon.request("/api/v1/apps/hello").json
        #expect(status["status"] as? String == "failed", "a deploy production rejected says failed")
        try work.git("reset", "-q", "--hard", "HEAD~1")

        // Once fixed, the next push goes through; the objects of the refused ones did no harm.
        let fixed = try work.commit("fixed", files: ["index.html": "v2"])
        let again = try await push(work)
        #expect(again.status == 0, "\(again.output)")
        #expect(try branch(setup.origin) == fixed)
        #expect(try String(contentsOfFile: scratch("deploy/current/index.html"), encoding: .utf8) == "v2")
        #expect(try await setup.daemon.request("/api/v1/apps/hello").json["status"] as? String == "idle")

        // A push to another branch passes at once and deploys nothing.
        let other = try await runProcess(
            "/usr/bin/git", ["-C", work.path, "push", "origin", "HEAD:refs/heads/feature"],
            environment: GitCLI.environment.merging(ProcessInfo.processInfo.environment) { a, _ in a })
        #expect(other.status == 0, "\(other.output)")
    }

    /// Ctrl-C while the deployment runs: the deployment is cancelled and the push refused.
    @Test func ctrlCCancelsTheDeploymentAndRefusesThePush() async throws {
        let setup = try setUp()
        let work = setup.work
        let good = try work.commit("good", files: ["index.html": "v1"])
        #expect(try await push(work).status == 0)
        try work.commit("hangs", files: ["HANG": ""])
        // git push in a process group of its own (as every SpawnedProcess is), so that the interrupt reaches it and
        // its hook, as Ctrl-C would.
        let output = scratch("push.out")
        let pusher = try SpawnedProcess(
            "/usr/bin/git", ["-C", work.path, "push", "origin", "HEAD:main"], log: output,
            environment: GitCLI.environment)
        try await setup.daemon.wait(for: "/api/v1/apps/hello/deployments") { json in
            let newest = (json["deployments"] as? [[String: Any]])?.first
            return newest?["status"] as? String == "running" && newest?["phase"] as? String == "build"
        }
        kill(-pusher.pid, SIGINT)
        let exit = await pusher.waitForExit(seconds: 60)
        #expect(exit != nil && exit != 0, "\((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        // git push and receive-pack die at once; the hook, which ignores the interrupt, cancels the deployment.
        try await setup.daemon.wait(for: "/api/v1/apps/hello/deployments") { json in
            ((json["deployments"] as? [[String: Any]])?.first?["status"] as? String) == "cancelled"
        }
        #expect(try branch(setup.origin) == good)
        #expect(try String(contentsOfFile: scratch("deploy/current/index.html"), encoding: .utf8) == "v1")
    }

    /// With the daemon down, a gated push is refused with a message that says so.
    @Test func aGatedPushIsRefusedWhenTheDaemonCannotBeReached() async throws {
        let setup = try setUp()
        setup.daemon.signal(SIGTERM)
        await #expect(setup.daemon.waitForExit(seconds: 30) == 0)
        try setup.work.commit("nobody home", files: ["index.html": "v1"])
        let refused = try await push(setup.work)
        #expect(refused.status != 0)
        #expect(refused.output.contains("the push is refused: cannot reach the daemon"), "\(refused.output)")
        #expect(try branch(setup.origin) == nil)
    }

    /// The same gate over ssh: OpenSSH's sshd runs git-receive-pack, which runs the hook.
    @Test(.enabled(if: SSHServer.isAvailable, "sshd and ssh are not installed"))
    func aGatedPushOverSSH() async throws {
        let setup = try setUp()
        let server = try SSHServer(in: scratch("sshd"))
        let key = try #require(server.userKeys.first { $0.name == "ed25519" })
        let knownHosts = try server.writeKnownHosts([try server.knownHostsLine(type: "ed25519")])
        let ssh =
            "ssh -i \(key.path) -o IdentitiesOnly=yes -o UserKnownHostsFile=\(knownHosts) -o StrictHostKeyChecking=yes"
            + " -o BatchMode=yes"
        try setup.work.git("remote", "add", "ssh", server.url(setup.origin))
        let good = try setup.work.commit("over ssh", files: ["index.html": "ssh"])
        let accepted = try await push(setup.work, "ssh", environment: ["GIT_SSH_COMMAND": ssh])
        #expect(accepted.status == 0, "\(accepted.output)\n\(server.log)")
        #expect(accepted.output.contains("the push is accepted"))
        #expect(try branch(setup.origin) == good)
        try setup.work.commit("fails over ssh", files: ["FAIL": "x"])
        let refused = try await push(setup.work, "ssh", environment: ["GIT_SSH_COMMAND": ssh])
        #expect(refused.status != 0)
        #expect(refused.output.contains("the push is refused"))
        #expect(try branch(setup.origin) == good)
    }
}
