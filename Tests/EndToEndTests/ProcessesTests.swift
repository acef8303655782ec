import Foundation
import TestSupport
import Testing

/// The real binary runs the example web app (`examples/webapp/app.py`) behind its public port, under a steady load
/// from a real HTTP client, through deploys, rollbacks, a failed health check and restarts of the daemon.
@Suite(.serialized) struct ProcessesTests {
    let scratch = ScratchDirectory("slipway-processes-e2e")

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let app = try! String(
        contentsOfFile: root.appendingPathComponent("examples/webapp/app.py").path, encoding: .utf8)

    /// A Python client: two threads that keep their connection alive, two that open a new one per request. It
    /// counts every request that got no 200 and every refused connection until the stop file appears. A request
    /// on a kept-alive connection that the server had closed is sent again on a new connection, as every HTTP
    /// client does (RFC 9112, 9.3.1); those are counted apart, as `resent`.
    static let client = #"""
        import http.client, json, os, sys, threading
        port, out, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        lock = threading.Lock()
        counts = {"requests": 0, "failures": 0, "refused": 0, "resent": 0}
        errors = []
        def note(key, error=None):
            with lock:
                counts[key] += 1
                if error is not None and len(errors) < 20: errors.append(repr(error))
        def ask(connection):
            connection.request("GET", "/release")
            response = connection.getresponse()
            response.read()
            return response.status, response.getheader("Connection")
        def kept_alive():
            connection, reused = None, False
            while not os.path.exists(stop):
                if connection is None:
                    connection, reused = http.client.HTTPConnection("127.0.0.1", port, timeout=30), False
                try:
                    status, header = ask(connection)
                except ConnectionRefusedError as error:
                    note("refused", error); connection.close(); connection = None; continue
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                    connection.close(); connection = None
                    note("resent" if reused else "failures", error); continue
                except Exception as error:
                    note("failures", error); connection.close(); connection = None; continue
                note("requests")
                if status != 200: note("failures", status)
                reused = True
                if header == "close": connection.close(); connection = None
        def new_connections():
            while not os.path.exists(stop):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    status, _ = ask(connection)
                    note("requests")
                    if status != 200: note("failures", status)
                except ConnectionRefusedError as error:
                    note("refused", error)
                except Exception as error:
                    note("failures", error)
                finally:
                    connection.close()
        threads = [threading.Thread(target=f) for f in (kept_alive, kept_alive, new_connections, new_connections)]
        for t in threads: t.start()
        for t in threads: t.join()
        with open(out, "w") as f: json.dump(dict(counts, errors=errors), f)
        """#

    /// What the public port says it runs, on a new connection.
    func served(on port: Int) async throws -> String {
        let (status, output) = try await runProcess(
            "/usr/bin/python3",
            [
                "-c",
                "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:\(port)/release', timeout=30).read().decode().strip())",
            ])
        return status == 0 ? output.trimmingCharacters(in: .whitespacesAndNewlines) : "error: \(output)"
    }

    func live(_ daemon: DaemonProcess) async throws -> Int {
        let app = try await daemon.request("/api/v1/apps/web").json
        return try #require((app["current"] as? [String: Any])?["id"] as? Int)
    }

    func pids(_ daemon: DaemonProcess) async throws -> [Int] {
        let list = try await daemon.request("/api/v1/apps/web/processes").json
        return ((list["processes"] as? [[String: Any]]) ?? []).compactMap { $0["pid"] as? Int }.sorted()
    }

    func startDaemon(_ number: Int = 1) throws -> DaemonProcess {
        try DaemonProcess(
            arguments: ["--pipelines", scratch("pipelines"), "--state", scratch("state")],
            logFile: scratch("daemon-\(number).log"))
    }

    @Test func noRequestFailsThroughDeploysRollbacksAFailedCheckAndRestartsOfTheDaemon() async throws {
        let port = try Loopback.freePort()
        let origin = scratch("web.git")
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", origin])
        try writeFile(
            scratch("pipelines/web.yml"),
            """
            repository: \(origin)
            deploy_to: \(scratch("deploy/web"))
            keep_releases: 3
            processes:
              web:
                run: exec python3 app.py
                port: \(port)
                instances: 2
                stop_timeout: 5s
            health:
              http: /up
              timeout: 20s
              interval: 100ms

            """)
        let work = try WorkingRepository(at: scratch("work"))
        try work.git("remote", "add", "origin", origin)
        func push(_ message: String, files: [String: String] = [:]) throws {
            try work.commit(message, files: files)
            try work.git("push", "-q", "origin", "HEAD:main")
        }
        var daemon = try startDaemon()
        defer { endSupervisedProcesses(state: scratch("state"), app: "web") }
        func deploy() async throws -> Int32 {
            try await slipway(["deploy", "web", "--wait"], environment: ["SLIPWAY_SERVER": daemon.url]).status
        }

        try push("v1", files: ["app.py": Self.app])
        #expect(try await deploy() == 0, "\(daemon.log)")
        #expect(try await served(on: port) == String(try await live(daemon)))

        try writeFile(scratch("client.py"), Self.client)
        let client = try SpawnedProcess(
            "/usr/bin/python3", [scratch("client.py"), String(port), scratch("counts.json"), scratch("stop")],
            log: scratch("client.log"))

        var rollbacks = 0
        for round in 1...20 {
            try push("v\(round + 1)", files: ["round": String(round)])
            #expect(try await deploy() == 0, "round \(round): \(daemon.log)")
            let release = String(try await live(daemon))
            for _ in 0..<3 { #expect(try await served(on: port) == release, "round \(round)") }
            if round % 4 == 0 {
                let rollback = try await slipway(
                    ["rollback", "web", "--wait"], environment: ["SLIPWAY_SERVER": daemon.url])
                #expect(rollback.status == 0, "\(rollback.output)")
                rollbacks += 1
                let back = String(try await live(daemon))
                #expect(back != release)
                for _ in 0..<3 { #expect(try await served(on: port) == back, "rollback in round \(round)") }
            }
            if round == 7 || round == 14 {
                // A graceful stop, then a kill: either way the app answers on while no daemon runs, and the next
                // daemon finds the very same processes.
                let before = try await pids(daemon)
                daemon.signal(round == 7 ? SIGTERM : SIGKILL)
                #expect(await daemon.waitForExit(seconds: 60) != nil)
                #expect(try await served(on: port) == release, "with the daemon down")
                daemon = try startDaemon(round)
                #expect(try await pids(daemon) == before)
            }
        }
        #expect(rollbacks == 5)

        // A release that fails its health check: the live one keeps serving, the new one is gone.
        let before = try await pids(daemon)
        let release = String(try await live(daemon))
        try push("broken", files: ["down": "1"])
        #expect(try await deploy() != 0)
        #expect(try await pids(daemon) == before)
        #expect(try await served(on: port) == release)
        let last = try #require(
            (try await daemon.request("/api/v1/apps/web/deployments?limit=2").json["deployments"] as? [[String: Any]]))
        #expect(last.map { $0["status"] as? String } == ["succeeded", "failed"], "the auto rollback, then the failure")

        try writeFile(scratch("stop"), "")
        let clientLog = (try? String(contentsOfFile: scratch("client.log"), encoding: .utf8)) ?? ""
        #expect(await client.waitForExit(seconds: 120) == 0, "\(clientLog)")
        let counts = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch("counts.json"))))
                as? [String: Any])
        #expect(counts["failures"] as? Int == 0, "\(counts)")
        #expect(counts["refused"] as? Int == 0, "\(counts)")
        #expect((counts["requests"] as? Int ?? 0) > 0, "\(counts)")
        print("processes e2e: \(counts)")
    }
}
