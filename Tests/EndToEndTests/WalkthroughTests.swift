import Foundation
import TestSupport
import Testing

/// docs/deploy-your-own-app.md, run as written: its `sh` blocks, in order, in a fresh home folder, with the built
/// `slipway` on PATH. The block that starts the daemon ("in a second terminal") runs in the background.
@Suite struct WalkthroughTests {
    let scratch = ScratchDirectory("slipway-walkthrough")

    /// The page's `sh` blocks, in order.
    static func shellBlocks(of markdown: String) -> [String] {
        var blocks: [String] = []
        var current: [String]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```sh" {
                current = []
            } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(String(line))
            }
        }
        return blocks
    }

    @Test func theWalkthroughDeploysAnAppAndRollsItBackAsWritten() async throws {
        let page = try String(contentsOfFile: repositoryRoot + "/docs/deploy-your-own-app.md", encoding: .utf8)
        let blocks = Self.shellBlocks(of: page)
        let serve = try #require(blocks.firstIndex { $0.contains("slipway serve") }, "a block starts the daemon")
        let home = scratch("home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let port = try Loopback.freePort()
        let environment = [
            "HOME": home, "PATH": productsDirectory + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? ""),
            // The page's commands use the default port; this test's daemon listens on a free one instead.
            "SLIPWAY_PORT": String(port), "SLIPWAY_SERVER": "http://127.0.0.1:\(port)",
            "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
            "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com", "NO_COLOR": "1",
        ]
        let shell = { (script: String) async throws -> String in
            let run = try await runProcess(
                "/bin/sh", ["-ec", script],
                environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                directory: home)
            #expect(run.status == 0, "\(script)\n---\n\(run.output)")
            return run.output
        }

        let before = try await shell(blocks[..<serve].joined(separator: "\n"))
        #expect(before.contains("1 pipeline file, 0 errors"), "\(before)")
        let daemon = try SpawnedProcess(
            "/bin/sh", ["-c", blocks[serve]], log: scratch("daemon.log"), environment: environment)
        defer {
            let holder = (try? String(contentsOfFile: home + "/slipway/state/lock", encoding: .utf8)) ?? ""
            if let line = holder.split(separator: "\n").first(where: { $0.hasPrefix("pid ") }),
                let pid = Int32(line.dropFirst(4))
            {
                kill(pid, SIGTERM)
            }
            daemon.stop()
        }
        #expect(Loopback.waitForListener(port: port, seconds: 60), "the daemon listens")

        let after = try await shell(blocks[(serve + 1)...].joined(separator: "\n"))
        #expect(after.contains("==> deployment 1 succeeded"), "\(after)")
        #expect(after.contains("==> deployment 2 succeeded"), "\(after)")
        let deployTo = home + "/slipway/state/apps/hello"
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: deployTo + "/current") == "releases/1")
        let page1 = try String(contentsOfFile: deployTo + "/current/public/index.html", encoding: .utf8)
        #expect(page1.contains("Hello from Slipway") && page1.contains("Built from") && !page1.contains("second"))
        let status = try await slipway(["status", "hello"], environment: environment)
        #expect(status.output.contains("hello  idle") && status.output.contains("live        release 1: "), "\(status)")
        #expect(status.output.contains(#/\n3 +rollback +rollback +[0-9a-f]{7} +succeeded/#), "\(status)")
    }
}
