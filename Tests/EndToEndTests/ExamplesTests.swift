import Foundation
import TestSupport
import Testing

/// The example apps of pipelines/ (code in examples/), each deployed end to end by the real daemon from its own
/// repository, changed and deployed again, and rolled back, as `script/run` sets them up.
@Suite struct ExamplesTests {
    /// One example on an origin of its own, with its pipeline file pointing there, and a daemon.
    struct Example {
        let app: String
        let scratch: ScratchDirectory
        let work: WorkingRepository
        let daemon: DaemonProcess
        /// The web app's port: the pipeline's 8000, made a free one so that tests and `script/run` do not collide.
        let port: Int

        var deployTo: String { scratch("deploy") }
        var shared: String { deployTo + "/shared" }

        init(_ app: String) throws {
            self.app = app
            scratch = ScratchDirectory("slipway-example-\(app)")
            work = try WorkingRepository(at: scratch("work"))
            let copy = try runProcess("/bin/cp", ["-R", repositoryRoot + "/examples/\(app)/.", work.path])
            guard copy.status == 0 else { throw TestFailure("cp: \(copy.output)") }
            port = try Loopback.freePort()
            try GitCLI.run(["init", "-q", "--bare", "-b", "main", scratch("origin.git")])
            try work.git("remote", "add", "origin", scratch("origin.git"))
            let original = try String(contentsOfFile: repositoryRoot + "/pipelines/\(app).yml", encoding: .utf8)
            let head = "repository: \(scratch("origin.git"))\ndeploy_to: \(scratch("deploy"))"
            let pipeline = original.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                line.hasPrefix("repository:") ? head : String(line)
            }.joined(separator: "\n").replacingOccurrences(of: "8000", with: String(port))
            try writeFile(scratch("pipelines/\(app).yml"), pipeline)
            daemon = try DaemonProcess(
                arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")],
                logFile: scratch("daemon.log"))
        }

        /// Commits what is in the working copy (with `change` appended to `file`), pushes, and deploys it.
        func deploy(_ message: String, change: String? = nil, in file: String? = nil) async throws -> String {
            if let change, let file {
                let path = work.path + "/" + file
                try writeFile(path, (try String(contentsOfFile: path, encoding: .utf8)) + change + "\n")
            }
            let sha = try work.commit(message)
            try work.git("push", "-q", "origin", "HEAD:main")
            let run = try await slipway(["deploy", app, "--wait", "--server", daemon.url])
            #expect(run.status == 0, "\(run.output)\n\(daemon.log)")
            #expect(!run.output.contains("left processes running"), "a service leaves its step's group: \(run.output)")
            return sha
        }

        func rollback() async throws -> String {
            let run = try await slipway(["rollback", app, "--wait", "--server", daemon.url])
            #expect(run.status == 0, "\(run.output)\n\(daemon.log)")
            return run.output
        }

        func live() throws -> String {
            try FileManager.default.destinationOfSymbolicLink(atPath: deployTo + "/current")
        }

        /// Ends the processes the daemon runs for the example (the web app, the worker): they outlive the daemon.
        func stopProcesses() { endSupervisedProcesses(state: scratch("state"), app: app) }
    }

    @Test func theStaticSiteIsBuiltCheckedAndRolledBack() async throws {
        let site = try Example("site")
        let first = try await site.deploy("The site")
        let page = try String(contentsOfFile: site.deployTo + "/current/public/index.html", encoding: .utf8)
        #expect(page.contains("Built from \(first) for hello from slipway"), "\(page)")
        _ = try await site.deploy("More", change: "<p>more</p>", in: "public/index.html")
        #expect(try site.live() == "releases/2")
        let output = try await site.rollback()
        #expect(try site.live() == "releases/1")
        #expect(try String(contentsOfFile: site.shared + "/live", encoding: .utf8) == "1\n")
        #expect(!output.contains("release 3 is live"), "activate names the release made live: \(output)")
        #expect(output.contains("release 1 is live"), "\(output)")
    }

    @Test func theWebAppAnswersFromEachReleaseItMadeLive() async throws {
        let webapp = try Example("webapp")
        defer { webapp.stopProcesses() }
        _ = try await webapp.deploy("The web app")
        #expect(try await release(webapp.port) == "1")
        _ = try await webapp.deploy("Greet", change: "# a change", in: "app.py")
        #expect(try await release(webapp.port) == "2")
        let home = try await get("/", port: webapp.port)
        #expect(home.contains("<h1>Hello from slipway</h1>") && home.contains("Release 2"), "\(home)")
        _ = try await webapp.rollback()
        #expect(try await release(webapp.port) == "1")

        // `slipway restart` swaps in new processes of the same release; `slipway ps` names them.
        let before = try await webProcesses(webapp)
        let restart = try await slipway(["restart", "webapp", "web", "--server", webapp.daemon.url])
        #expect(restart.status == 0, "\(restart.output)\n\(webapp.daemon.log)")
        let after = try await webProcesses(webapp)
        #expect(after.map(\.release) == ["1"] && before.map(\.release) == ["1"], "\(before) → \(after)")
        #expect(Set(after.map(\.pid)).isDisjoint(with: before.map(\.pid)), "\(before) → \(after)")
        #expect(try await release(webapp.port) == "1")
    }

    @Test func theWorkerDoesJobsAcrossADeploy() async throws {
        let worker = try Example("worker")
        defer { worker.stopProcesses() }
        _ = try await worker.deploy("The worker")
        try writeFile(worker.shared + "/queue/first.job", "three little words\n")
        #expect(try await done(worker, "first") == "release 1: 3 words\n")
        _ = try await worker.deploy("Again", change: "# a change", in: "worker.sh")
        try writeFile(worker.shared + "/queue/second.job", "two words\n")
        #expect(try await done(worker, "second") == "release 2: 2 words\n")
    }

    /// The web app's running processes, as `slipway ps webapp --json` lists them.
    func webProcesses(_ webapp: Example) async throws -> [(pid: Int, release: String)] {
        let run = try await slipway(["ps", "webapp", "--json", "--server", webapp.daemon.url])
        let list = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any]
        return ((list?["processes"] as? [[String: Any]]) ?? []).filter { $0["status"] as? String == "running" }
            .compactMap { process in
                guard let pid = process["pid"] as? Int else { return nil }
                return (pid, (process["release"] as? Int).map(String.init) ?? "\(process["release"] ?? "")")
            }
    }

    /// Which release answers on the web app's public port (`GET /release`, the body of the answer).
    func release(_ port: Int) async throws -> String {
        let answer = try await get("/release", port: port)
        let body = answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) } ?? answer
        return body.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func get(_ path: String, port: Int) async throws -> String {
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        return try await offThePool { try RawHTTP.exchange(port: port, request: request, timeout: 10).text }
    }

    /// The worker's result for job `name`, once it is written (for 30 seconds at most).
    func done(_ worker: Example, _ name: String) async throws -> String? {
        let path = worker.shared + "/done/\(name).done"
        for _ in 0..<300 {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), text.hasSuffix("\n") { return text }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }
}
