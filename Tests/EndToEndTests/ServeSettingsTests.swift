import Crypto
import Foundation
import TestSupport
import Testing

/// What `slipway serve` takes from its environment and flags, seen from outside the real binary.
@Suite struct ServeSettingsTests {
    let scratch = ScratchDirectory("slipway-serve")

    @Test func secretsComeFromTheEnvironmentAndStayOutOfTheLog() async throws {
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", scratch("hello.git")])
        try writeFile(
            scratch("pipelines/hello.yml"), "repository: \(scratch("hello.git"))\ndeploy_to: \(scratch("deploy"))\n")
        let daemon = try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state"), "--log-level", "debug"],
            environment: ["SLIPWAY_TOKEN": "env-token-1234", "SLIPWAY_WEBHOOK_SECRET": "env-hook-secret"],
            logFile: scratch("daemon.log"))

        // SLIPWAY_TOKEN guards every change, through the API and through the client, which reads it too.
        #expect(try await daemon.request("/api/v1/deployments/999/cancel", method: "POST").status == 401)
        #expect(
            try await daemon.request("/api/v1/deployments/999/cancel", method: "POST", token: "env-token-1234").status
                == 404)
        let refused = try await slipway(["cancel", "999", "--server", daemon.url], environment: ["SLIPWAY_TOKEN": ""])
        #expect(refused.status == 1 && refused.output.contains("token"), "\(refused.output)")
        let allowed = try await slipway(
            ["cancel", "999", "--server", daemon.url], environment: ["SLIPWAY_TOKEN": "env-token-1234"])
        #expect(allowed.status == 1 && allowed.output.contains("999"), "the daemon looked for it: \(allowed.output)")

        // SLIPWAY_WEBHOOK_SECRET verifies deliveries for apps without a secret of their own.
        let ping = Data(#"{"zen":"Keep it simple.","hook_id":1}"#.utf8)
        func deliver(signedWith secret: String, id: String) async throws -> Int {
            let signature = HMAC<SHA256>.authenticationCode(for: ping, using: SymmetricKey(data: Array(secret.utf8)))
                .map { String(format: "%02x", $0) }.joined()
            return try await daemon.request(
                "/hooks/github", method: "POST", rawBody: ping,
                headers: [
                    "Content-Type": "application/json", "X-GitHub-Event": "ping", "X-GitHub-Delivery": id,
                    "X-Hub-Signature-256": "sha256=\(signature)",
                ]
            ).status
        }
        #expect(try await deliver(signedWith: "env-hook-secret", id: "one") == 200)
        #expect(try await deliver(signedWith: "another-secret", id: "two") == 401)

        #expect(!daemon.log.contains("env-token-1234") && !daemon.log.contains("env-hook-secret"), "\(daemon.log)")
    }

    @Test func maxBodyTakesSizesWithUnits() async throws {
        try writeFile(scratch("pipelines/.keep"), "")
        let daemon = try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state"), "--max-body", "1KiB"],
            logFile: scratch("daemon.log"))
        let small = try await daemon.request("/hooks/github", method: "POST", rawBody: Data(repeating: 32, count: 1000))
        let large = try await daemon.request("/hooks/github", method: "POST", rawBody: Data(repeating: 32, count: 1100))
        #expect(small.status != 413, "1,000 bytes are under 1 KiB")
        #expect(large.status == 413)
        #expect((large.json["error"] as? [String: Any])?["code"] as? String == "payload_too_large")

        let badSize = try await slipway(["serve", "--pipelines", scratch("pipelines"), "--max-body", "lots"])
        #expect(badSize.status == 2 && badSize.output.contains("--max-body 'lots' is not a size"))
    }

    @Test func withoutDeployToReleasesGoUnderTheStateAndTheDashboardCanComeFromDisk() async throws {
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", scratch("hello.git")])
        try writeFile(scratch("pipelines/hello.yml"), "repository: \(scratch("hello.git"))\nbuild:\n  - \"true\"\n")
        try writeFile(scratch("page.html"), "<p>first draft</p>")
        let daemon = try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")],
            environment: ["SLIPWAY_DASHBOARD_FILE": scratch("page.html")], logFile: scratch("daemon.log"))

        let work = try WorkingRepository(at: scratch("work"))
        _ = try work.git("remote", "add", "origin", scratch("hello.git"))
        try work.commit("first", files: ["index.txt": "hello"])
        _ = try work.git("push", "-q", "origin", "HEAD:main")
        let pushed = try await daemon.request(
            "/hooks/push", method: "POST", body: ["app": "hello", "ref": "refs/heads/main", "after": try work.head()])
        let id = try #require(((pushed.json["deployments"] as? [[String: Any]])?.first)?["id"] as? Int)
        try await daemon.wait(for: "/api/v1/deployments/\(id)") { ($0["status"] as? String) == "succeeded" }
        let live = try String(contentsOfFile: scratch("state/apps/hello/current/index.txt"), encoding: .utf8)
        #expect(live == "hello", "<state>/apps/<app> is the default deploy_to")

        // The page is read from the file on every request, so an edit shows on the next load.
        #expect(try await daemon.text("/") == "<p>first draft</p>")
        try writeFile(scratch("page.html"), "<p>second draft</p>")
        #expect(try await daemon.text("/") == "<p>second draft</p>")
    }

    @Test func sigintStopsARunningStepWhenTheGraceRunsOutAndKeepsTheQueue() async throws {
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", scratch("hello.git")])
        // The first build hangs until it is stopped; every later one passes.
        let build =
            #"if [ ! -e "$SLIPWAY_SHARED_DIR/hung" ]; then touch "$SLIPWAY_SHARED_DIR/hung"; echo $$ > "$SLIPWAY_SHARED_DIR/pid"; sleep 300; fi"#
        try writeFile(
            scratch("pipelines/hello.yml"),
            "repository: \(scratch("hello.git"))\ndeploy_to: \(scratch("deploy"))\nbuild:\n  - '\(build)'\n")
        let arguments = ["--pipelines", scratch("pipelines"), "--state", scratch("state"), "--shutdown-grace", "1s"]
        // Started before the first push, so that catching up at start-up finds nothing.
        let daemon = try DaemonProcess(arguments: arguments, logFile: scratch("daemon1.log"))
        let work = try WorkingRepository(at: scratch("work"))
        _ = try work.git("remote", "add", "origin", scratch("hello.git"))
        try work.commit("first", files: ["index.txt": "hello"])
        _ = try work.git("push", "-q", "origin", "HEAD:main")

        let running = try #require(
            try await daemon.request("/api/v1/apps/hello/deploy", method: "POST").json["id"] as? Int)
        try await daemon.wait(for: "/api/v1/deployments/\(running)") { ($0["phase"] as? String) == "build" }
        let queued = try #require(
            try await daemon.request("/api/v1/apps/hello/deploy", method: "POST").json["id"] as? Int)
        let step = try #require(try await processID(writtenTo: scratch("deploy/shared/pid")))

        daemon.signal(SIGINT)
        await #expect(daemon.waitForExit(seconds: 30) == 0, "\(daemon.log)")
        #expect(kill(step, 0) != 0, "the step was stopped when the grace ran out")

        let restarted = try DaemonProcess(arguments: arguments, logFile: scratch("daemon2.log"))
        let stopped = try await restarted.request("/api/v1/deployments/\(running)").json
        #expect(stopped["status"] as? String == "interrupted", "\(stopped)")
        try await restarted.wait(for: "/api/v1/deployments/\(queued)") { ($0["status"] as? String) == "succeeded" }
        // Catching up at the restart found the head already queued, and added nothing.
        let history = try await restarted.request("/api/v1/apps/hello/deployments").json["deployments"] as? [Any]
        #expect(history?.count == 2)
        #expect(try String(contentsOfFile: scratch("deploy/current/index.txt"), encoding: .utf8) == "hello")
    }

    /// `--node` names the daemon's heartbeat in the store: up while it serves, down at once after a graceful stop,
    /// and still listed once another node serves the same state.
    @Test func nodesAreUpWhileServingAndDownOnceStopped() async throws {
        try writeFile(scratch("pipelines/.keep"), "")
        func nodes(_ daemon: DaemonProcess) async throws -> [String: String] {
            let listed = try await daemon.request("/api/v1/nodes").json["nodes"] as? [[String: Any]] ?? []
            return Dictionary(
                uniqueKeysWithValues: listed.map { ($0["name"] as? String ?? "", $0["status"] as? String ?? "") })
        }
        let arguments = ["--pipelines", scratch("pipelines"), "--state", scratch("state")]
        let alpha = try DaemonProcess(arguments: arguments + ["--node", "alpha"], logFile: scratch("alpha.log"))
        #expect(try await nodes(alpha) == ["alpha": "up"], "registered before it listens")
        alpha.signal(SIGTERM)
        await #expect(alpha.waitForExit(seconds: 30) == 0, "\(alpha.log)")

        let beta = try DaemonProcess(
            arguments: arguments, environment: ["SLIPWAY_NODE": "beta"], logFile: scratch("beta.log"))
        #expect(try await nodes(beta) == ["alpha": "down", "beta": "up"])
    }
}
