import Deploy
import Foundation
import Logging
import SlipwayAPI
import TestSupport
import Testing

@Suite struct CrashTests {
    /// The phases the kills are aimed at, in turn: each has a step long enough to be caught in.
    static let targets: [DeploymentPhase] = [.build, .test, .migrate, .activate, .health]

    /// The real engine deploys in a loop in another process (`slipway-bench crash-loop`); it is killed with SIGKILL
    /// in each of the phases above in turn. Every step holds while a file named after its phase exists, so the test
    /// knows, without timing anything, that the deployment is in the phase it aims at when it kills. After each kill
    /// the store must show the deployment in that phase; then recovery runs and the invariants are checked.
    @Test func killingTheEngineAtAnyMomentLeavesCurrentOnACompleteRelease() async throws {
        let bench = productsDirectory + "/slipway-bench"
        try #require(
            FileManager.default.isExecutableFile(atPath: bench), "build slipway-bench first (swift build --build-tests)"
        )
        let scratch = ScratchDirectory("slipway-crash")
        let work = try WorkingRepository(at: scratch("work"))
        let fileCount = 300
        for version in ["v1", "v2"] {
            var files: [String: String] = ["MANIFEST": "\(fileCount)\n"]
            for index in 0..<fileCount { files["files/f\(index).txt"] = "\(version)\n" }
            try work.commit(version, files: files)
        }
        try GitCLI.run(["clone", "-q", "--bare", work.path, scratch("origin.git")])
        // While `hold/<phase>` exists, that phase's step says so in `hold/<phase>.held` and waits.
        let hold = scratch("hold")
        try FileManager.default.createDirectory(atPath: hold, withIntermediateDirectories: true)
        let step = "while [ -f \(hold)/$SLIPWAY_PHASE ]; do touch \(hold)/$SLIPWAY_PHASE.held; sleep 0.01; done"
        try writeFile(
            scratch("pipelines/crash.yml"),
            """
            repository: \(scratch("origin.git"))
            deploy_to: \(scratch("deploy"))
            keep_releases: 2
            build:
              - \(step); touch built
            test:
              - \(step)
            migrate:
              - \(step)
            activate:
              - \(step)
            health:
              command: \(step); test -f built
              interval: 10ms

            """)
        let fixture = CrashFixture(
            bench: bench, pipelines: scratch("pipelines"), state: scratch("state"), deployTo: scratch("deploy"),
            fileCount: fileCount, logs: scratch.path)
        var random = SystemRandomNumberGenerator()
        var phasesHit = Set<DeploymentPhase>()
        let kills = 10
        for kill in 0..<kills {
            let target = Self.targets[kill % Self.targets.count]
            let held = "\(hold)/\(target.rawValue).held"
            try writeFile("\(hold)/\(target.rawValue)", "")
            let loop = try fixture.startLoop(log: "crash-loop-\(kill).log")
            var waited = 0
            while !FileManager.default.fileExists(atPath: held), waited < 6000, loop.isRunning {
                try await Task.sleep(for: .milliseconds(10))
                waited += 1
            }
            try #require(
                FileManager.default.fileExists(atPath: held),
                "kill \(kill): no step held in \(target.rawValue)\n\(loop.log)")
            // Somewhere in the held step's loop.
            try await Task.sleep(for: .milliseconds(Int.random(in: 0..<30, using: &random)))
            loop.kill()

            let running = try await fixture.store().deployments(status: .running)
            #expect(running.map(\.phase) == [target], "kill \(kill) was aimed at \(target.rawValue)")
            phasesHit.formUnion(running.map(\.phase))
            // Recovery ends the held step's processes; only then can its files go without one being made again.
            try await fixture.recover()
            for name in [target.rawValue, target.rawValue + ".held"] {
                try? FileManager.default.removeItem(atPath: "\(hold)/\(name)")
            }
            try await fixture.checkInvariants()
        }
        print("kills landed in phases: \(phasesHit.map(\.rawValue).sorted())")
        #expect(phasesHit == Set(Self.targets), "kills landed in \(phasesHit.map(\.rawValue).sorted())")

        // After all that, the next deploy goes through, and a graceful stop lets the one after it finish.
        let loop = try fixture.startLoop(log: "crash-loop-last.log")
        let succeeded = await loop.waitForLine(timeout: .seconds(60)) { $0.hasSuffix(" succeeded done") }
        #expect(succeeded != nil, "no deployment succeeded after the kills\n\(loop.log)")
        loop.stop()
        #expect(loop.waitForExit(seconds: 60) == 0, "crash-loop stops cleanly on SIGTERM\n\(loop.log)")
        let report = try await fixture.recover()
        #expect(report.isClean, "nothing to recover after a graceful stop: \(report.summary)")
        try await fixture.checkInvariants()
    }
}

/// The crash test's app, its state and its deploy folder, and how to look at them from outside the process.
private struct CrashFixture {
    let bench: String
    let pipelines: String
    let state: String
    let deployTo: String
    let fileCount: Int
    let logs: String
    let app = "crash"

    func startLoop(log: String) throws -> CrashLoopProcess {
        try CrashLoopProcess(
            bench: bench, arguments: ["--pipelines", pipelines, "--state", state, "--app", app],
            log: (logs as NSString).appendingPathComponent(log))
    }

    func store() throws -> SQLiteStore {
        try SQLiteStore(path: state + "/slipway.sqlite")
    }

    /// Start-up recovery, as the next start of the daemon runs it: through a daemon that serves nothing.
    @discardableResult
    func recover() async throws -> RecoveryReport {
        var logger = Logger(label: "crash-test")
        logger.logLevel = .critical
        let daemon = try Daemon(
            configuration: DaemonConfiguration(pipelinesDirectory: pipelines, stateDirectory: state), logger: logger)
        return try await daemon.prepare()
    }

    func checkInvariants() async throws {
        let store = try store()
        #expect(try await store.deployments(status: .running).isEmpty, "no deployment stays running")
        let leftovers =
            (try? FileManager.default.contentsOfDirectory(atPath: deployTo))?.filter {
                $0.hasPrefix(".") && $0 != ".slipway"
            } ?? []
        #expect(leftovers.isEmpty, "no temporary links or half-removed trees: \(leftovers)")
        let live = currentRelease()
        #expect(try await store.appState(app).liveRelease == live, "the store agrees with current")
        if let live {
            // Complete: every file of the commit is there, all from the same version.
            let directory = "\(deployTo)/releases/\(live)"
            let files = try FileManager.default.contentsOfDirectory(atPath: directory + "/files")
            #expect(files.count == fileCount, "release \(live) is complete")
            let versions = Set(
                try files.map { try String(contentsOfFile: directory + "/files/" + $0, encoding: .utf8) })
            #expect(versions.count == 1)
            let release = try #require(try await store.release(live), "the live release is recorded")
            #expect(release.isKept)
        }
        // Every directory on disk is a kept release or the live one.
        let kept = Set(try await store.releases(app: app).map(\.id))
        for id in releasesOnDisk() {
            #expect(kept.contains(id) || id == live, "release \(id) on disk is accounted for")
        }
    }

    /// The release `current` points at (`releases/<id>`), read from the disk.
    private func currentRelease() -> Int64? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: deployTo + "/current") else {
            return nil
        }
        let components = target.split(separator: "/")
        guard components.count == 2, components[0] == "releases" else { return nil }
        return Int64(components[1])
    }

    private func releasesOnDisk() -> [Int64] {
        ((try? FileManager.default.contentsOfDirectory(atPath: deployTo + "/releases")) ?? []).compactMap(Int64.init)
    }
}

/// `slipway-bench crash-loop` as a child process, with the event lines it prints (`deployment <id> <status>
/// <phase>`) and its log.
private final class CrashLoopProcess: @unchecked Sendable {
    // @unchecked: the process is only touched by the test that started it; `lines` is Sendable.
    private let process: SpawnedProcess
    private let lines: AsyncStream<String>
    private let logFile: String

    init(bench: String, arguments: [String], log: String) throws {
        logFile = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process = try SpawnedProcess(
            bench, ["crash-loop"] + arguments, environment: nil, output: .pipe, errors: .file(log))
        lines = Self.lines(of: process.output!)
    }

    /// What it wrote on stderr.
    var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// The first line that `matches`, or nil when the process ended or `timeout` passed first.
    func waitForLine(timeout: Duration, where matches: @escaping @Sendable (String) -> Bool) async -> String? {
        await withTaskGroup(of: String?.self) { [lines] group in
            group.addTask {
                for await line in lines where matches(line) { return line }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    var isRunning: Bool { process.isRunning }

    func kill() {
        process.stop()
    }

    func stop() {
        process.signal(SIGTERM)
    }

    /// Its exit status, or nil if it is still running after `seconds`.
    func waitForExit(seconds: Double) -> Int32? {
        process.waitForExit(seconds: seconds)
    }

    /// The lines read from `handle`, by a thread of their own, since reading a pipe blocks.
    private static func lines(of handle: FileHandle) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        Thread.detachNewThread {
            var pending: [UInt8] = []
            while case let chunk = handle.availableData, !chunk.isEmpty {
                pending += chunk
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    continuation.yield(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            continuation.finish()
        }
        return stream
    }
}
