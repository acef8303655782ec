import Foundation
import TestSupport
import Testing

/// Clients that misbehave, against the real binary: they are answered or cut off, and they cannot take what the
/// daemon needs to deploy.
@Suite struct HostileClientsTests {
    let scratch = ScratchDirectory("slipway-hostile")

    func daemon(_ extra: [String] = [], descriptorLimit: Int? = nil) throws -> DaemonProcess {
        try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")] + extra,
            logFile: scratch("daemon.log"), descriptorLimit: descriptorLimit)
    }

    func exchange(_ daemon: DaemonProcess, _ request: String, timeout: Double) async throws -> RawHTTP.Answer {
        let port = daemon.port
        return try await offThePool { try RawHTTP.exchange(port: port, request: Array(request.utf8), timeout: timeout) }
    }

    @Test func http10WithoutKeepAliveIsClosedAndABadChunkIsA400() async throws {
        try writeFile(scratch("pipelines/.keep"), "")
        let daemon = try daemon()
        let old = try await exchange(daemon, "GET /healthz HTTP/1.0\r\n\r\n", timeout: 20)
        #expect(old.text.hasPrefix("HTTP/1.1 200"), "\(old.text)")
        #expect(old.text.lowercased().contains("connection: close"))
        #expect(old.closedByServer, "an HTTP/1.0 client reads until the connection closes")

        let chunked = try await exchange(
            daemon,
            "POST /api/v1/apps/x/deploy HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Transfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n", timeout: 20)
        #expect(chunked.text.hasPrefix("HTTP/1.1 400"), "\(chunked.text)")
        #expect(chunked.text.contains(#""code":"bad_request""#))
        #expect(chunked.closedByServer, "nothing after a malformed chunk can be read")
        #expect(!daemon.log.contains(" error "), "a client's mistake is not the daemon's error: \(daemon.log)")
    }

    @Test func idleSlowAndStalledConnectionsAreClosedButStreamsAreNot() async throws {
        try writeFile(scratch("pipelines/.keep"), "")
        let daemon = try daemon(["--idle-timeout", "1s"])
        let slowHead = try await exchange(daemon, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", timeout: 30)
        #expect(slowHead.closedByServer && slowHead.bytes.isEmpty, "a head that never ends: \(slowHead.text)")
        let stalledBody = try await exchange(
            daemon,
            "POST /hooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: 100\r\n\r\n{", timeout: 30)
        #expect(stalledBody.closedByServer, "a body that stalls after one byte")
        let idle = try await exchange(daemon, "", timeout: 30)
        #expect(idle.closedByServer, "a connection that never sends")
        // An event stream writes, so it is not idle; it is still open after several idle timeouts.
        let stream = try await exchange(
            daemon, "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout: 4)
        #expect(stream.text.hasPrefix("HTTP/1.1 200") && !stream.closedByServer, "\(stream.text)")
        #expect(try await daemon.request("/healthz").status == 200)
    }

    /// Under a 256-descriptor limit, 300 idle connections held during a deployment's steps: the steps still start
    /// (the connection budget leaves them descriptors), and the deployment succeeds.
    @Test func idleConnectionsCannotTakeTheDescriptorsStepsNeed() async throws {
        let origin = scratch("hello.git")
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", origin])
        let steps = (1...5).map { "  - ls /proc/self/fd > /dev/null && echo step \($0)\n" }.joined()
        try writeFile(
            scratch("pipelines/hello.yml"),
            "repository: \(origin)\ndeploy_to: \(scratch("deploy"))\nbuild:\n"
                + "  - while [ ! -f \"$SLIPWAY_SHARED_DIR/go\" ]; do sleep 0.05; done\n" + steps)
        let work = try WorkingRepository(at: scratch("work"))
        try work.git("remote", "add", "origin", origin)
        let daemon = try daemon(descriptorLimit: 256)
        try work.commit("one", files: ["a": "1"])
        try work.git("push", "-q", "origin", "HEAD:main")
        let started = try await daemon.request("/api/v1/apps/hello/deploy", method: "POST").json
        let id = try #require(started["id"] as? Int)
        try await daemon.wait(for: "/api/v1/deployments/\(id)") { ($0["phase"] as? String) == "build" }

        let port = daemon.port
        var held = (0..<300).map { _ in RawHTTP.openIdle(port: port) }
        // Closed once only: a descriptor closed twice may by then be another test's file or socket.
        defer { held.forEach { close($0) } }
        try writeFile(scratch("deploy/shared/go"), "")
        // The API may be out of reach while the connections are held; the log file says when the steps are done.
        let logFile = scratch("state/logs/\(id).log")
        for _ in 0..<600 {
            if let log = try? String(contentsOfFile: logFile, encoding: .utf8), log.contains("step 5") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        held.forEach { close($0) }
        held = []
        let done = try await daemon.wait(for: "/api/v1/deployments/\(id)", seconds: 60) {
            ($0["status"] as? String) != "running"
        }
        #expect(done["status"] as? String == "succeeded", "\(done)\n\(daemon.log)")
        #expect(!daemon.log.contains("Too many open files"), "\(daemon.log)")
    }
}
