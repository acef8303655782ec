import Foundation
import TestSupport
import Testing

/// Remotes as users have them, through the real binary: a remote that accepts the connection and then says nothing
/// fails the deploy within the documented bound, over every transport, and cannot keep the daemon from stopping.
@Suite(.serialized) struct RealRemotesTests {
    let scratch = ScratchDirectory("slipway-remotes")

    static let schemes = ["git", "http", "https", "ssh"]

    func daemon(repository: String, extra: [String]) throws -> DaemonProcess {
        try writeFile(
            scratch("pipelines/stalled.yml"), "repository: \(repository)\ndeploy_to: \(scratch("deploy"))\n")
        return try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")] + extra,
            logFile: scratch("daemon.log"))
    }

    static func url(_ scheme: String, port: Int) -> String {
        scheme == "ssh" ? "ssh://git@127.0.0.1:\(port)/stalled.git" : "\(scheme)://127.0.0.1:\(port)/stalled.git"
    }

    @Test(arguments: schemes)
    func aRemoteThatSaysNothingFailsTheDeployWithinTheBound(scheme: String) async throws {
        let silent = try LoopbackTCPServer()
        let daemon = try daemon(
            repository: Self.url(scheme, port: silent.port),
            extra: ["--connect-timeout", "2s", "--network-timeout", "2s"])
        let answer = try await daemon.request("/api/v1/apps/stalled/deploy", method: "POST")
        #expect(answer.status == 502, "\(answer.json)")
        #expect(answer.json[path: "error.code"] as? String == "repository_unavailable")
        let message = answer.json[path: "error.message"] as? String ?? ""
        // The bound that applied is named, so the answer shows it came from the limit and not from the remote going
        // away: two seconds to connect or to hear the next byte, whichever applies. (No wall-clock assertion: on a
        // busy machine the test's own scheduling can take longer than the daemon did.)
        #expect(message.contains("timed out") && message.contains("2 s"), "\(message)\n\(daemon.log)")
        // The app's queue is not held: the daemon still answers and deploys nothing.
        #expect(try await daemon.request("/api/v1/apps/stalled").json["queued"] as? Int == 0)
        // The server must stay silent, not go away (which resets its connections) once its port has been read.
        withExtendedLifetime(silent) {}
    }

    /// With the default (long) time limits, a SIGTERM during a fetch from a remote that says nothing still stops the
    /// daemon within its grace period: the fetch is cancelled.
    @Test func sigtermDuringAStalledFetchStopsTheDaemonWithinItsGrace() async throws {
        let silent = try LoopbackTCPServer()
        let daemon = try daemon(repository: Self.url("git", port: silent.port), extra: ["--shutdown-grace", "3s"])
        let request = Task { try await daemon.request("/api/v1/apps/stalled/deploy", method: "POST").status }
        try await Task.sleep(for: .milliseconds(500))
        daemon.signal(SIGTERM)
        // The default limits are minutes long, so exiting at all within this wait means the fetch was cancelled.
        let status = await daemon.waitForExit(seconds: 60)
        #expect(status == 0, "\(daemon.log)")
        _ = try? await request.value
        withExtendedLifetime(silent) {}
    }
}

extension Dictionary where Key == String, Value == Any {
    subscript(path path: String) -> Any? {
        var value: Any? = self
        for key in path.split(separator: ".") { value = (value as? [String: Any])?[String(key)] }
        return value
    }
}
