import Foundation
import Pipeline
import SlipwayAPI
import TestSupport
import Testing

@testable import Deploy

/// The supervisor on its own: real child processes, started, restarted, crashed, found again and stopped.
@Suite struct ProcessSupervisorTests {
    let scratch = ScratchDirectory("slipway-processes")
    /// The contract's policy, a thousand times faster.
    static let quick = SupervisionPolicy(
        firstDelay: .milliseconds(1), longestDelay: .milliseconds(60), window: .seconds(60), restartsInWindow: 5)

    func supervisor() -> ProcessSupervisor {
        ProcessSupervisor(stateDirectory: scratch("state"), policy: Self.quick)
    }

    /// Starts `run` as the live generation of app `a`.
    func live(_ supervisor: ProcessSupervisor, run: String, instances: Int = 1) async throws -> [API.Process] {
        try FileManager.default.createDirectory(atPath: scratch("release"), withIntermediateDirectories: true)
        let started = try await supervisor.start(
            app: "a", release: 7, processes: [ProcessDefinition(name: "web", run: run, instances: instances)],
            directory: scratch("release"), environment: ["PATH": "/usr/bin:/bin", "GREETING": "hi"])
        try await supervisor.promote(app: "a", generation: started.generation)
        return await supervisor.processes(app: "a")
    }

    /// Polls the supervisor until `condition` holds, for at most a minute.
    func eventually(
        _ supervisor: ProcessSupervisor, _ condition: ([API.Process]) -> Bool
    ) async throws -> [API.Process] {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let processes = await supervisor.processes(app: "a")
            if condition(processes) { return processes }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("not reached: \(await supervisor.processes(app: "a"))")
    }

    func stopAll(_ supervisor: ProcessSupervisor) async {
        await supervisor.retire(app: "a")
    }

    @Test func startsEachInstanceWithItsOwnPortAndTheEnvironment() async throws {
        let supervisor = supervisor()
        let processes = try await live(
            supervisor,
            run:
                #"echo "$PORT $SLIPWAY_PROCESS $SLIPWAY_INSTANCE $GREETING" > "out.$SLIPWAY_INSTANCE"; exec sleep 600"#,
            instances: 2)
        #expect(processes.map(\.status) == [.running, .running])
        #expect(Set(processes.map(\.port)).count == 2)
        for process in processes {
            let path = scratch("release/out.\(process.instance)")
            _ = try await eventually(supervisor) { _ in FileManager.default.fileExists(atPath: path) }
            let line = try String(contentsOfFile: path, encoding: .utf8)
            #expect(line == "\(process.port) web \(process.instance) hi\n")
        }
        let log = try String(contentsOfFile: scratch("state/logs/processes/a/web.log"), encoding: .utf8)
        #expect(log.contains("web.1 started (pid"))
        await stopAll(supervisor)
        #expect(await supervisor.processes(app: "a").isEmpty)
        for process in processes { #expect(ProcessIdentity.of(process.pid!) == nil, "pid \(process.pid!) is gone") }
    }

    @Test func aKilledProcessIsStartedAgain() async throws {
        let supervisor = supervisor()
        let first = try #require(try await live(supervisor, run: "exec sleep 600").first)
        kill(first.pid!, SIGKILL)
        let again = try await eventually(supervisor) {
            $0.first?.restarts == 1 && $0.first?.status == .running && $0.first?.pid != first.pid
        }
        #expect(again.first?.port == first.port, "an instance keeps its port across restarts")
        let log = try String(contentsOfFile: scratch("state/logs/processes/a/web.log"), encoding: .utf8)
        #expect(log.contains("was ended by signal 9; starting it again"))
        await stopAll(supervisor)
    }

    @Test func oneThatExitsAtOnceCrashesAfterFiveRestarts() async throws {
        let events = EventBus()
        let changes = events.subscribe()
        let supervisor = ProcessSupervisor(stateDirectory: scratch("state"), policy: Self.quick, events: events)
        _ = try await live(supervisor, run: "exit 3")
        let crashed = try await eventually(supervisor) { $0.first?.status == .crashed }
        #expect(crashed.first?.restarts == 5)
        #expect(crashed.first?.pid == nil)
        let log = try String(contentsOfFile: scratch("state/logs/processes/a/web.log"), encoding: .utf8)
        #expect(log.contains("exited with status 3; crashed"))
        // The crash went out as an event.
        for await event in changes {
            if case .process(let change) = event, change.process.status == .crashed {
                #expect(change.app == "a" && change.process.restarts == 5)
                break
            }
        }
        // A restart starts it over.
        await #expect(throws: ProcessSupervisor.Failure.self) {
            try await supervisor.restart(app: "a", process: "nope")
        }
        await stopAll(supervisor)
    }

    @Test func aNewSupervisorFindsTheProcessesAgainWithoutRestartingThem() async throws {
        let first = supervisor()
        let before = try await live(first, run: "exec sleep 600", instances: 2)
        // The first daemon is gone: it watches no more.
        await first.letGo()
        let second = supervisor()
        await second.adopt()
        let after = await second.processes(app: "a")
        #expect(after.map(\.pid) == before.map(\.pid))
        #expect(after.map(\.restarts) == [0, 0])
        // It supervises them: a kill is noticed by the new one.
        kill(before[0].pid!, SIGKILL)
        _ = try await eventually(second) { $0.first?.restarts == 1 && $0.first?.pid != nil }
        await stopAll(second)
    }

    @Test func aRecordedPidThatIsNowAnotherProcessIsNotTakenForIt() async throws {
        let first = supervisor()
        let before = try await live(first, run: "exec sleep 600")
        // Pretend the pid was given to another process: a new supervisor must start the instance again rather
        // than adopt a stranger.
        var state = try #require(ProcessStateFiles(stateDirectory: scratch("state")).read(app: "a"))
        state.generations[0].instances[0].identity?.startTime += 1
        try ProcessStateFiles(stateDirectory: scratch("state")).write(state)
        let second = supervisor()
        await second.adopt()
        let after = try await eventually(second) { $0.first?.pid != nil && $0.first?.pid != before.first?.pid }
        #expect(after.first?.status == .running)
        await stopAll(second)
        await stopAll(first)
    }

    @Test func aGenerationThatIsNotPromotedIsStoppedAndTheLiveOneStays() async throws {
        let supervisor = supervisor()
        let live = try await live(supervisor, run: "exec sleep 600")
        let next = try await supervisor.start(
            app: "a", release: 8, processes: [ProcessDefinition(name: "web", run: "exec sleep 600")],
            directory: scratch("release"), environment: [:])
        #expect(await supervisor.processes(app: "a").map(\.status) == [.running, .starting])
        await supervisor.discard(app: "a", generation: next.generation)
        #expect(await supervisor.processes(app: "a").map(\.pid) == live.map(\.pid))
        await stopAll(supervisor)
    }

    @Test func aRestartOfOneProcessLeavesTheOthersRunning() async throws {
        let supervisor = supervisor()
        try FileManager.default.createDirectory(atPath: scratch("release"), withIntermediateDirectories: true)
        let started = try await supervisor.start(
            app: "a", release: 7,
            processes: [
                ProcessDefinition(name: "web", run: "exec sleep 600"),
                ProcessDefinition(name: "worker", run: "exec sleep 600"),
            ], directory: scratch("release"), environment: [:])
        try await supervisor.promote(app: "a", generation: started.generation)
        let before = await supervisor.processes(app: "a")
        try await supervisor.restart(app: "a", process: "worker")
        let after = await supervisor.processes(app: "a")
        #expect(after.map(\.name).sorted() == ["web", "worker"])
        #expect(after.first { $0.name == "web" }?.pid == before.first { $0.name == "web" }?.pid)
        #expect(after.first { $0.name == "worker" }?.pid != before.first { $0.name == "worker" }?.pid)
        #expect(ProcessIdentity.of(before.first { $0.name == "worker" }!.pid!) == nil)
        // All of them, and a crashed one starts over.
        try await supervisor.restart(app: "a", process: nil)
        let again = await supervisor.processes(app: "a")
        #expect(Set(again.compactMap(\.pid)).isDisjoint(with: after.compactMap(\.pid)))
        #expect(again.map(\.status) == [.running, .running])
        await stopAll(supervisor)
    }

    @Test func promotingStopsTheOldGenerationGracefully() async throws {
        let supervisor = supervisor()
        // The old one says when SIGTERM reached it and exits on its own.
        let old = try await live(
            supervisor, run: #"trap 'echo term >> "terms"; exit 0' TERM; while :; do sleep 0.05; done"#)
        let next = try await supervisor.start(
            app: "a", release: 8, processes: [ProcessDefinition(name: "web", run: "exec sleep 600")],
            directory: scratch("release"), environment: [:])
        try await supervisor.promote(app: "a", generation: next.generation)
        let now = await supervisor.processes(app: "a")
        #expect(now.count == 1 && now[0].release == 8 && now[0].pid != old[0].pid)
        #expect(try String(contentsOfFile: scratch("release/terms"), encoding: .utf8) == "term\n")
        await stopAll(supervisor)
    }
}

/// A process's log: rotated past its limit, and followed as it grows.
@Suite struct ProcessLogTests {
    let scratch = ScratchDirectory("slipway-process-log")

    @Test func rotatesPastItsLimitAndKeepsTheOlderFile() throws {
        let log = ProcessLog(stateDirectory: scratch.path, app: "a", process: "web")
        let descriptor = try log.openForWriting()
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1024 * 1024)
        for _ in 0..<(ProcessLog.limit / chunk.count + 1) {
            _ = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        }
        log.rotateIfNeeded()
        // The writer keeps its descriptor: what it writes now lands in the emptied file.
        _ = "after\n".withCString { write(descriptor, $0, 6) }
        close(descriptor)
        let older = try FileManager.default.attributesOfItem(atPath: log.olderPath)[.size] as? Int
        #expect(older == ProcessLog.limit + chunk.count)
        let current = try String(contentsOfFile: log.path, encoding: .utf8)
        #expect(current.contains("rotated: the output before this line is in web.log.1"))
        #expect(current.hasSuffix("after\n"))
        #expect(log.contents().count == older! + current.utf8.count)
    }

    @Test func aFollowerGetsTheLastLinesThenEachNewOne() async throws {
        let log = ProcessLog(stateDirectory: scratch.path, app: "a", process: "web")
        let descriptor = try log.openForWriting()
        defer { close(descriptor) }
        for line in ["one\n", "two\n", "three\n"] { _ = line.withCString { write(descriptor, $0, strlen($0)) } }
        let stream = try #require(FileTail.lines(of: log.path, from: log.offsetOfLastLines(2)))
        var lines = stream.makeAsyncIterator()
        #expect(await lines.next() == "two")
        #expect(await lines.next() == "three")
        _ = "four\n".withCString { write(descriptor, $0, 5) }
        #expect(await lines.next() == "four")
    }
}
