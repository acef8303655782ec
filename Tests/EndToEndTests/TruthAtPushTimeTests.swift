import Crypto
import Foundation
import TestSupport
import Testing

/// What a pusher and an operator are told is the truth: a deploy that failed says so, no push is lost while the
/// daemon is down, one daemon owns a state directory, and the small things a user meets say what they mean.
@Suite(.serialized) struct TruthAtPushTimeTests {
    let scratch = ScratchDirectory("slipway-truth")

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

    func daemon(_ log: String = "daemon.log", extra: [String] = []) throws -> DaemonProcess {
        try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")] + extra,
            logFile: scratch(log))
    }

    func push(_ work: WorkingRepository) async throws -> (status: Int32, output: String) {
        try await runProcess(
            "/usr/bin/git", ["-C", work.path, "push", "origin", "HEAD:main"],
            environment: GitCLI.environment.merging(
                ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("GIT_") }
            ) { a, _ in a })
    }

    /// After a failed health check and the automatic rollback, the app is `failed` in the API and the CLI, and the
    /// pusher's last line cannot be missed.
    @Test func aDeployThatProductionRejectedIsFailedEverywhere() async throws {
        let (origin, work) = try setUp(
            "health:\n  command: test ! -f SICK\n  timeout: 2s\n  interval: 100ms\n")
        let daemon = try daemon()
        #expect(try await slipway(["hook", "install", origin, "--app", "hello", "--server", daemon.url]).status == 0)
        try work.commit("good", files: ["index.html": "v1"])
        #expect(try await push(work).output.contains("remote: ==> deployment 1 succeeded"))
        try work.commit("sick", files: ["SICK": "x"])
        let sick = try await push(work)
        #expect(sick.status == 0, "git accepted it: only --gate can refuse a push")
        #expect(sick.output.contains("remote: DEPLOY FAILED: deployment 2 failed: the health check failed after 2s"))
        #expect(sick.output.contains("(rolled back to release 1)"))
        let app = try await daemon.request("/api/v1/apps/hello").json
        #expect(app["status"] as? String == "failed")
        #expect((app["current"] as? [String: Any])?["id"] as? Int == 1)
        let status = try await slipway(["status", "--server", daemon.url])
        #expect(status.output.split(separator: "\n").last?.hasPrefix("hello  failed") == true, "\(status.output)")
    }

    /// The hook that cannot reach the daemon says the push is kept; the daemon deploys it when it starts.
    @Test func aPushMadeWhileTheDaemonIsDownIsDeployedWhenItStarts() async throws {
        let (origin, work) = try setUp("build:\n  - true\n")
        let first = try daemon()
        #expect(try await slipway(["hook", "install", origin, "--app", "hello", "--server", first.url]).status == 0)
        try work.commit("one", files: ["a": "1"])
        #expect(try await push(work).output.contains("succeeded"))
        first.signal(SIGTERM)
        await #expect(first.waitForExit(seconds: 30) == 0)
        #expect(first.log.contains("stopping: no deployment is running"))
        #expect(first.log.contains("stopped"))

        let missed = try work.commit("while down", files: ["a": "2"])
        let pushed = try await push(work)
        #expect(pushed.output.contains("cannot reach the daemon"))
        #expect(pushed.output.contains("is deployed when the daemon starts"))

        let second = try daemon("daemon2.log")
        let caught = try await second.wait(for: "/api/v1/apps/hello/deployments") { json in
            let newest = (json["deployments"] as? [[String: Any]])?.first
            return newest?["commit"] as? String == missed && newest?["status"] as? String == "succeeded"
        }
        let newest = try #require((caught["deployments"] as? [[String: Any]])?.first)
        #expect(newest["trigger"] as? String == "catch_up")
        // A restart with nothing new deploys nothing.
        second.signal(SIGTERM)
        await #expect(second.waitForExit(seconds: 30) == 0)
        let third = try daemon("daemon3.log")
        try await Task.sleep(for: .milliseconds(300))
        let history = try await third.request("/api/v1/apps/hello/deployments").json["deployments"] as? [Any]
        #expect(history?.count == 2)
    }

    /// A second daemon on the same state directory exits at once, naming the one that holds it, and the first's
    /// running step is not touched.
    @Test func aSecondDaemonOnTheSameStateExitsAndTouchesNothing() async throws {
        let (_, work) = try setUp("build:\n  - while [ ! -f \"$SLIPWAY_SHARED_DIR/go\" ]; do sleep 0.05; done\n")
        let first = try daemon()
        try work.commit("one", files: ["a": "1"])
        try work.git("push", "-q", "origin", "HEAD:main")
        let started = try await first.request("/api/v1/apps/hello/deploy", method: "POST").json
        let id = try #require(started["id"] as? Int)
        try await first.wait(for: "/api/v1/deployments/\(id)") { ($0["phase"] as? String) == "build" }

        let second = try await slipway([
            "serve", "--pipelines", scratch("pipelines"), "--state", scratch("state"), "--port", "0",
        ])
        #expect(second.status == 1)
        #expect(second.output.contains("pid \(first.pid)"), "\(second.output)")
        #expect(second.output.contains("is already running on the state directory \(scratch("state"))"))

        try writeFile(scratch("deploy/hello/shared/go"), "")
        let done = try await first.wait(for: "/api/v1/deployments/\(id)") { ($0["status"] as? String) != "running" }
        #expect(done["status"] as? String == "succeeded", "\(done)")
    }

    /// Ten services of one repository, each deployed by hand first: a push that touches one deploys exactly one.
    @Test func aMonorepoPushAfterManualDeploysDeploysOnlyWhatChanged() async throws {
        let origin = scratch("mono.git")
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", origin])
        let work = try WorkingRepository(at: scratch("work-mono"))
        try work.git("remote", "add", "origin", origin)
        var files: [String: String] = [:]
        for index in 0..<10 {
            files["services/s\(index)/main.txt"] = "1"
            try writeFile(
                scratch("pipelines/s\(index).yml"),
                "repository: \(origin)\ndeploy_to: \(scratch("deploy/s\(index)"))\npaths: [\"services/s\(index)/**\"]\n"
            )
        }
        // The daemon starts before the first push, so that catching up at start-up deploys nothing of its own.
        let daemon = try daemon(extra: ["--webhook-secret", "mono-secret"])
        try work.commit("all", files: files)
        try work.git("push", "-q", "origin", "HEAD:main")
        for index in 0..<10 {
            let started = try await daemon.request("/api/v1/apps/s\(index)/deploy", method: "POST").json
            let id = try #require(started["id"] as? Int)
            try await daemon.wait(for: "/api/v1/deployments/\(id)") { ($0["status"] as? String) == "succeeded" }
        }
        let sha = try work.commit("touch s3", files: ["services/s3/main.txt": "2"])
        try work.git("push", "-q", "origin", "HEAD:main")
        let body = try JSONSerialization.data(
            withJSONObject: ForgeExamples.github(
                ref: "refs/heads/main", before: String(repeating: "0", count: 40), after: sha, cloneURL: origin))
        let signature = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array("mono-secret".utf8)))
            .map { String(format: "%02x", $0) }.joined()
        let answer = try await daemon.request(
            "/hooks/github", method: "POST", rawBody: body,
            headers: [
                "X-GitHub-Event": "push", "X-GitHub-Delivery": UUID().uuidString,
                "X-Hub-Signature-256": "sha256=\(signature)", "Content-Type": "application/json",
            ])
        #expect(answer.status == 202)
        #expect((answer.json["matched"] as? [String])?.count == 10)
        let deployed = (answer.json["deployments"] as? [[String: Any]])?.compactMap { $0["app"] as? String }
        #expect(deployed == ["s3"])
    }

    @Test func portsOutOfRangeAndInUseAreSaidInWords() async throws {
        _ = try setUp("build:\n  - true\n")
        let outOfRange = try await slipway(["serve", "--pipelines", scratch("pipelines"), "--port", "99999"])
        #expect(outOfRange.status == 2)
        #expect(outOfRange.output.contains("--port 99999 is not a port (0 to 65535)"))
        let first = try daemon()
        let taken = try await slipway([
            "serve", "--pipelines", scratch("pipelines"), "--state", scratch("other-state"), "--port",
            String(first.port),
        ])
        #expect(taken.status == 1)
        #expect(taken.output.contains("127.0.0.1:\(first.port) is in use by another program"), "\(taken.output)")
    }

    /// A body over --max-body sent whole, with Connection: close and no Expect: 100-continue (as Python's urllib and
    /// many forges' clients send it): the 413 comes, and the connection is closed rather than left hanging.
    @Test func anOversizedBodyIsRefusedAndTheConnectionClosed() async throws {
        _ = try setUp("build:\n  - true\n")
        let daemon = try daemon(extra: ["--max-body", "64K"])
        let body = String(repeating: "x", count: 1024 * 1024)
        let request =
            "POST /hooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        let answer = try RawHTTP.exchange(port: daemon.port, request: Array(request.utf8), timeout: 10)
        #expect(answer.text.hasPrefix("HTTP/1.1 413"), "\(answer.text.prefix(200))")
        #expect(answer.closedByServer, "the server closed the connection")
    }
}
