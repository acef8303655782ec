import Foundation
import SlipwayAPI
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// The outcome of one step.
public struct StepResult: Sendable, Equatable {
    public var status: StepStatus
    /// The exit code; 128 + N when a signal N ended the shell, as shells report it; nil if it never started.
    public var exitCode: Int32?
    public var startedAt: Date
    public var finishedAt: Date
    /// How long it took, by the monotonic clock: a jump of the wall clock does not change it.
    public var duration: Duration

    public init(status: StepStatus, exitCode: Int32?, startedAt: Date, finishedAt: Date, duration: Duration) {
        self.status = status
        self.exitCode = exitCode
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.duration = duration
    }

    /// A result that began at `start` and ends now.
    public init(status: StepStatus, exitCode: Int32?, since start: Stopwatch) {
        self.init(
            status: status, exitCode: exitCode, startedAt: start.date, finishedAt: Date(), duration: start.elapsed)
    }
}

/// When something started, by the wall clock (for the record) and by the monotonic clock (for its duration).
public struct Stopwatch: Sendable {
    public let date: Date
    private let instant: ContinuousClock.Instant

    public init() {
        date = Date()
        instant = ContinuousClock.now
    }

    public var elapsed: Duration { ContinuousClock.now - instant }
}

/// Runs one step: `/bin/sh -c <run>` in the release directory, in a process group of its own.
public struct StepRunner: Sendable {
    /// How long a step's processes get between SIGTERM and SIGKILL.
    public var killGrace: Duration
    /// How long to keep reading after the step ended, for output still in the pipe.
    public var drainTimeout: Duration

    public init(killGrace: Duration = .seconds(10), drainTimeout: Duration = .seconds(2)) {
        self.killGrace = killGrace
        self.drainTimeout = drainTimeout
    }

    /// Runs `command` and returns how it ended. It never throws: a step that cannot even start has failed.
    ///
    /// - `started` is told the process group as soon as it exists, so that the store can remember it and a
    ///   restarted daemon can end a step that outlived it.
    /// - When the step times out or `cancellation` fires, the whole group gets SIGTERM, then SIGKILL after
    ///   `killGrace`. When the step's shell exits, anything it left running in its group is ended the same way:
    ///   a step leaves nothing behind. A service a step starts must leave the group (`setsid`) to outlive it.
    public func run(
        _ command: String, in directory: String, environment: [String: String], timeout: Duration,
        log: DeploymentLog, cancellation: Cancellation? = nil,
        started: @Sendable (ProcessGroup) async -> Void = { _ in }
    ) async -> StepResult {
        let start = Stopwatch()
        // A socket pair rather than pipe(2): it can be made close-on-exec atomically, so a step that another app
        // starts at the same moment never inherits this step's output and holds it open.
        func noChannel(closing descriptors: [Int32] = []) -> StepResult {
            log.note("[slipway] cannot create the output channel: \(String(cString: strerror(errno)))")
            for descriptor in descriptors { close(descriptor) }
            return StepResult(status: .failed, exitCode: nil, since: start)
        }
        var pipeFDs: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pipeFDs) == 0 else {
            return noChannel()
        }
        shutdown(pipeFDs[0], Int32(SHUT_WR))
        shutdown(pipeFDs[1], Int32(SHUT_RD))
        let errorFD = fcntl(pipeFDs[1], F_DUPFD_CLOEXEC, 0)
        guard errorFD >= 0 else { return noChannel(closing: pipeFDs) }
        let pump = OutputPump(fd: pipeFDs[0], log: log)

        var options = PlatformOptions()
        options.processGroupID = 0
        // Only reached if the calling task itself is cancelled; deployments cancel through `cancellation`.
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: killGrace)]

        enum Ending: Sendable { case running, timedOut, cancelled }
        let ending = Locked(Ending.running)
        let grace = killGrace
        let status: TerminationStatus
        do {
            let result = try await Subprocess.run(
                .path("/bin/sh"), arguments: ["-c", command],
                environment: .custom(
                    Dictionary(
                        uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), $0.value) })),
                workingDirectory: FilePath(directory), platformOptions: options, input: .none,
                output: .fileDescriptor(FileDescriptor(rawValue: pipeFDs[1]), closeAfterSpawningProcess: true),
                error: .fileDescriptor(FileDescriptor(rawValue: errorFD), closeAfterSpawningProcess: true)
            ) { execution -> (Task<Void, Never>, Int?) in
                let group = ProcessGroup(execution.processIdentifier.value)
                await started(group)
                let watchdog = Task {
                    guard (try? await Task.sleep(for: timeout)) != nil else { return }
                    ending.withLock { if $0 == .running { $0 = .timedOut } }
                    log.note("[slipway] the step timed out after \(DurationText.format(timeout)); stopping it")
                    await group.terminate(grace: grace)
                }
                let key = cancellation?.onCancel {
                    ending.withLock { if $0 == .running { $0 = .cancelled } }
                    log.note("[slipway] cancelled; stopping the step")
                    Task { await group.terminate(grace: grace) }
                }
                return (watchdog, key)
            }
            result.closureResult.0.cancel()
            if let key = result.closureResult.1 { cancellation?.removeHandler(key) }
            status = result.terminationStatus
            let group = ProcessGroup(result.processIdentifier.value)
            if group.isAlive {
                log.note(
                    "[slipway] the step left processes running in its group; ending them (use setsid for services)")
                await group.terminate(grace: killGrace)
            }
        } catch {
            // The write ends are not closed here: swift-subprocess owns them (`closeAfterSpawningProcess`) and has
            // closed them on every path that throws. Closing them again could close another step's descriptors.
            pump.stop()
            log.note("[slipway] cannot start the step: \(error)")
            return StepResult(status: .failed, exitCode: nil, since: start)
        }

        if !(await pump.waitForEnd(timeout: drainTimeout)) {
            log.note("[slipway] stopped reading: a process outside the step's group still holds its output")
            pump.stop()
        }

        let exitCode: Int32
        switch status {
        case .exited(let code): exitCode = Int32(truncatingIfNeeded: code)
        case .signaled(let signal): exitCode = 128 + Int32(truncatingIfNeeded: signal)
        }
        let resultStatus: StepStatus
        switch ending.value {
        case .timedOut: resultStatus = .timedOut
        case .cancelled: resultStatus = .cancelled
        case .running: resultStatus = exitCode == 0 ? .succeeded : .failed
        }
        return StepResult(status: resultStatus, exitCode: exitCode, since: start)
    }
}

extension StepRunner {
    /// The environment of a step, in the contract's order: `PATH`, `HOME` and `LANG` from the daemon, then the
    /// pipeline's `env`, then the step's own `env`, then Slipway's `SLIPWAY_*` values, which nothing overrides.
    public static func environment(
        daemon: [String: String], pipeline: Pipeline, step: Step?, slipway: [String: String]
    ) -> [String: String] {
        var result: [String: String] = [:]
        result["PATH"] = daemon["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for name in ["HOME", "LANG"] {
            if let value = daemon[name] { result[name] = value }
        }
        for variable in pipeline.environment { result[variable.name] = variable.value }
        for variable in step?.environment ?? [] { result[variable.name] = variable.value }
        for (name, value) in slipway { result[name] = value }
        return result
    }
}
