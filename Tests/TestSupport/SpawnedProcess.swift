import Foundation

/// A long-running child process (a server) started with posix_spawn and reaped by pid.
///
/// Foundation's `Process` learns that a child ended when a descriptor the child inherited closes; sshd, nginx and
/// fcgiwrap close every inherited descriptor as they start, after which Foundation blocks its monitor thread in
/// waitpid on them, and no other `Process` in the test run is ever seen to exit. Servers are started this way.
public final class SpawnedProcess: @unchecked Sendable {
    // @unchecked: `pid` is set once in init; stop() is idempotent under the lock.
    public let pid: pid_t
    private let lock = NSLock()
    private var reaped = false
    private var status: Int32?

    /// Starts `executable` with `arguments`, stdin from /dev/null and stdout and stderr appended to `log` (or
    /// /dev/null), in the environment of the tests plus `environment`.
    public init(
        _ executable: String, _ arguments: [String], log: String? = nil, environment: [String: String] = [:]
    )
        throws
    {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw LoopbackError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    deinit {
        stop()
    }

    /// True while the process has not exited.
    public var isRunning: Bool {
        lock.withLock {
            guard !reaped else { return false }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                reaped = true
                self.status = status
            }
            return !reaped
        }
    }

    /// Waits up to `seconds` for the process to exit; returns its exit code (128 + N after signal N), or nil if it
    /// is still running.
    public func waitForExit(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while isRunning && Date() < deadline { usleep(20_000) }
        return lock.withLock {
            guard let status else { return nil }
            let signal = status & 0x7f
            return signal == 0 ? (status >> 8) & 0xff : 128 + signal
        }
    }

    /// The exit code once the process has exited and been reaped, else nil.
    private var exitCode: Int32? {
        guard !isRunning else { return nil }
        return lock.withLock {
            guard let status else { return nil }
            let signal = status & 0x7f
            return signal == 0 ? (status >> 8) & 0xff : 128 + signal
        }
    }
    /// `waitForExit`, sleeping between looks rather than blocking a thread.
    public func waitForExit(seconds: Double) async -> Int32? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return exitCode
    }

    /// Kills the process (SIGKILL) and reaps it.
    public func stop() {
        lock.withLock {
            guard !reaped else { return }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            reaped = true
        }
    }
}
