import Foundation
import Pipeline
import SlipwayAPI
import TestSupport
import Testing

@Suite struct StepRunnerTests {
    let scratch = ScratchDirectory()
    let runner = StepRunner(killGrace: .milliseconds(500), drainTimeout: .milliseconds(500))
    let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin"]

    func log(_ secrets: [String] = [], limit: Int = DeploymentLog.defaultLimit) throws -> DeploymentLog {
        try DeploymentLog(path: scratch("logs/\(UUID().uuidString).log"), secrets: secrets, limit: limit)
    }

    func contents(_ log: DeploymentLog) throws -> String {
        try String(contentsOfFile: log.path, encoding: .utf8)
    }

    @Test func reportsExitCodesAndStatuses() async throws {
        let log = try log()
        let ok = await runner.run(
            "exit 0", in: scratch.path, environment: environment, timeout: .seconds(120), log: log)
        #expect(ok.status == .succeeded && ok.exitCode == 0)
        let failed = await runner.run(
            "exit 3", in: scratch.path, environment: environment, timeout: .seconds(120), log: log)
        #expect(failed.status == .failed && failed.exitCode == 3)
        let killed = await runner.run(
            "kill -9 $$", in: scratch.path, environment: environment, timeout: .seconds(120), log: log)
        #expect(killed.status == .failed && killed.exitCode == 137)
        #expect(failed.finishedAt >= failed.startedAt)
    }

    @Test func mergesStdoutAndStderrInOrderAndRunsInTheDirectory() async throws {
        let log = try log()
        try FileManager.default.createDirectory(atPath: scratch("release"), withIntermediateDirectories: true)
        let result = await runner.run(
            "echo one; echo two >&2; echo three; pwd; printf 'no newline'", in: scratch("release"),
            environment: environment, timeout: .seconds(120), log: log)
        #expect(result.status == .succeeded)
        #expect(try contents(log) == "one\ntwo\nthree\n\(scratch("release"))\nno newline\n")
    }

    @Test func buildsTheEnvironmentInTheContractOrder() async throws {
        var pipeline = Pipeline(app: "a", repository: "/r")
        pipeline.environment = [
            EnvironmentVariable("APP_ENV", "production"), EnvironmentVariable("SHARED", "pipeline"),
        ]
        let step = Step(run: "env", environment: [EnvironmentVariable("SHARED", "step")])
        let env = StepRunner.environment(
            daemon: ["PATH": "/bin:/usr/bin", "HOME": "/home/d", "LANG": "C.UTF-8", "SECRET_DAEMON_VAR": "leak"],
            pipeline: pipeline, step: step, slipway: ["SLIPWAY_APP": "a", "SLIPWAY_PHASE": "build"])
        #expect(
            env == [
                "PATH": "/bin:/usr/bin", "HOME": "/home/d", "LANG": "C.UTF-8", "APP_ENV": "production",
                "SHARED": "step", "SLIPWAY_APP": "a", "SLIPWAY_PHASE": "build",
            ])
        let log = try log()
        _ = await runner.run("env | sort", in: scratch.path, environment: env, timeout: .seconds(120), log: log)
        let lines = try contents(log).split(separator: "\n").map(String.init)
        #expect(lines.contains("APP_ENV=production"))
        #expect(lines.contains("SLIPWAY_PHASE=build"))
        #expect(!lines.contains { $0.hasPrefix("SECRET_DAEMON_VAR") })
    }

    @Test func outsideDataReachesTheStepOnlyAsData() async throws {
        let marker = scratch("pwned")
        let hostile = "$(touch \(marker))`touch \(marker)`; touch \(marker)"
        let log = try log()
        let result = await runner.run(
            "printf '%s\\n' \"$SLIPWAY_BRANCH\"", in: scratch.path,
            environment: environment.merging(["SLIPWAY_BRANCH": hostile]) { $1 }, timeout: .seconds(120), log: log)
        #expect(result.status == .succeeded)
        #expect(try contents(log) == hostile + "\n")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test func aTimeoutEndsTheWholeGroupIncludingABackgroundGrandchild() async throws {
        let log = try log()
        let group = Locked<ProcessGroup?>(nil)
        // The grandchild keeps the output open, as a careless `server &` would; if it were not ended this test
        // would wait for its 300 seconds.
        let result = await runner.run(
            "sleep 300 & echo started; sleep 300", in: scratch.path, environment: environment,
            timeout: .milliseconds(400), log: log, started: { g in group.withLock { $0 = g } })
        #expect(result.status == .timedOut)
        let pgid = try #require(group.value)
        #expect(pgid.livingMembers.isEmpty, "no process of the step is left: \(pgid.livingMembers)")
        #expect(try contents(log).contains("started"))
        #expect(try contents(log).contains("timed out after 400ms"))
    }

    @Test func aStepThatIgnoresSIGTERMGetsSIGKILLAfterTheGrace() async throws {
        let log = try log()
        let group = Locked<ProcessGroup?>(nil)
        let result = await runner.run(
            "trap '' TERM; sleep 300 & sleep 300", in: scratch.path, environment: environment,
            timeout: .milliseconds(300), log: log, started: { g in group.withLock { $0 = g } })
        #expect(result.status == .timedOut)
        #expect(try #require(group.value).livingMembers.isEmpty)
    }

    @Test func cancellingStopsTheStep() async throws {
        let log = try log()
        let cancellation = Cancellation()
        let group = Locked<ProcessGroup?>(nil)
        Task {
            try await Task.sleep(for: .milliseconds(300))
            cancellation.cancel()
        }
        let result = await runner.run(
            "sleep 300 & sleep 300", in: scratch.path, environment: environment, timeout: .seconds(60), log: log,
            cancellation: cancellation, started: { g in group.withLock { $0 = g } })
        #expect(result.status == .cancelled)
        #expect(try #require(group.value).livingMembers.isEmpty)
    }

    @Test func processesLeftBehindByAFinishedStepAreEnded() async throws {
        let log = try log()
        let group = Locked<ProcessGroup?>(nil)
        let result = await runner.run(
            "sleep 300 >/dev/null 2>&1 & echo done", in: scratch.path, environment: environment,
            timeout: .seconds(60), log: log, started: { g in group.withLock { $0 = g } })
        #expect(result.status == .succeeded)
        #expect(try #require(group.value).livingMembers.isEmpty)
        #expect(try contents(log).contains("left processes running"))
    }

    @Test func aProcessThatLeftTheGroupCannotHoldTheStepOpen() async throws {
        let log = try log()
        let pidFile = scratch("escaped.pid")
        // A process in a session of its own that keeps the step's output open for five minutes.
        let result = await runner.run(
            "setsid sh -c 'echo $$ > \(pidFile); exec sleep 300' & echo detached", in: scratch.path,
            environment: environment, timeout: .seconds(60), log: log)
        #expect(result.status == .succeeded)
        #expect(try contents(log).contains("detached"))
        #expect(try contents(log).contains("stopped reading"))
        // The step came back while the escaped process still lives: it did not wait for it.
        let pid = try #require(
            Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, 0) == 0)
        kill(pid, SIGKILL)
    }

    @Test func masksSecretsEvenWhenSplitAcrossWrites() async throws {
        let log = try log(["token-123", "hunter2"])
        _ = await runner.run(
            "printf 'key=tok'; sleep 0.2; printf 'en-123 and hunter2\\n'; echo hunter2 >&2", in: scratch.path,
            environment: environment, timeout: .seconds(120), log: log)
        log.note("[slipway] done with token-123")
        #expect(try contents(log) == "key=*** and ***\n***\n[slipway] done with ***\n")
    }

    @Test func boundsTheLogAndMarksTheCut() async throws {
        let limit = 64 * 1024
        let log = try log(limit: limit)
        let result = await runner.run(
            "i=0; while [ $i -lt 5000 ]; do echo \"line $i of some output that goes on\"; i=$((i+1)); done",
            in: scratch.path, environment: environment, timeout: .seconds(30), log: log)
        #expect(result.status == .succeeded)
        log.note("[slipway] deployment finished")
        let text = try contents(log)
        #expect(text.utf8.count <= limit)
        #expect(text.contains("[slipway] the log reached"))
        #expect(text.hasSuffix("[slipway] deployment finished\n"))
        #expect(!text.contains("line 4999"))
    }

    @Test func aStepThatCannotStartHasFailed() async throws {
        let log = try log()
        let result = await runner.run(
            "true", in: scratch("does-not-exist"), environment: environment, timeout: .seconds(120), log: log)
        #expect(result.status == .failed)
        #expect(result.exitCode == nil)
        #expect(try contents(log).contains("cannot start the step"))
    }

    @Test func aStepThatCannotStartClosesNothingItDoesNotOwn() async throws {
        // A step that cannot start once closed its output descriptors a second time, after swift-subprocess had
        // closed them: by then the numbers could belong to another step starting beside it, whose spawn then failed.
        let runner = runner
        let environment = environment
        let failed = try await withThrowingTaskGroup(of: StepStatus?.self) { group in
            for index in 0..<200 {
                let log = try log()
                let starts = index.isMultiple(of: 2)
                let directory = starts ? scratch.path : scratch("does-not-exist")
                group.addTask {
                    let result = await runner.run(
                        "true", in: directory, environment: environment, timeout: .seconds(30), log: log)
                    return starts ? result.status : nil
                }
            }
            return try await group.reduce(into: 0) { count, status in
                count += status.map { $0 == .succeeded ? 0 : 1 } ?? 0
            }
        }
        #expect(failed == 0)
    }
}
