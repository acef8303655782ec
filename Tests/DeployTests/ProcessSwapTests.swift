import Foundation
import Pipeline
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

/// Deployments of an app with `processes:`, through the one deployment run: the example web app, swapped on every
/// deploy, kept when the new release fails its health check.
@Suite(.serialized) struct ProcessSwapTests {
    static let app = try! String(
        contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/webapp/app.py").path, encoding: .utf8)

    static let pipeline = """
        processes:
          web:
            run: exec python3 app.py
            port: 18999
            stop_timeout: 5s
        health:
          http: /up
          timeout: 20s
          interval: 100ms

        """

    /// What the instance on `port` says it runs.
    func release(on port: Int) async throws -> String {
        let (status, output) = try await runProcess(
            "/usr/bin/python3",
            [
                "-c",
                "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:\(port)/release').read().decode().strip())",
            ],
            environment: ["PATH": "/usr/bin:/bin"])
        #expect(status == 0, "\(output)")
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func eachDeploySwapsTheProcessesAndAFailedCheckKeepsTheOldOnes() async throws {
        let fixture = try await DeployFixture(yaml: Self.pipeline)
        let supervisor = fixture.context.processes
        defer { Task { await supervisor.retire(app: "hello") } }

        let first = try await fixture.deploy(try fixture.push("v1", files: ["app.py": Self.app]))
        #expect(first.status == .succeeded, "\((try? fixture.log(first)) ?? "")")
        let one = await supervisor.processes(app: "hello")
        #expect(one.map(\.status) == [.running])
        #expect(one.first?.release == first.id)
        #expect(try await release(on: one[0].port) == String(first.id))
        #expect(try fixture.log(first).contains("==> processes: generation 1 is live"))

        // The new release answers 503: its process is stopped, the old one never was.
        let broken = try await fixture.deploy(try fixture.push("v2", files: ["down": "1"]))
        #expect(broken.status == .failed)
        #expect(await supervisor.processes(app: "hello").map(\.pid) == one.map(\.pid))
        #expect(try await release(on: one[0].port) == String(first.id))

        try FileManager.default.removeItem(atPath: fixture.work.path + "/down")
        let third = try await fixture.deploy(try fixture.push("v3"))
        #expect(third.status == .succeeded, "\((try? fixture.log(third)) ?? "")")
        let three = await supervisor.processes(app: "hello")
        #expect(three.count == 1 && three[0].release == third.id && three[0].pid != one[0].pid)
        #expect(ProcessIdentity.of(one[0].pid!) == nil, "the old instance has stopped")
        #expect(try await release(on: three[0].port) == String(third.id))
        await supervisor.retire(app: "hello")
    }
}
