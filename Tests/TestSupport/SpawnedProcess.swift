import Foundation

/// A child process started with posix_spawn, in a process group of its own, with every descriptor but its standard
/// three closed, and reaped by pid. The tests start every process this way, not with Foundation's `Process`:
///
/// - on Linux, `Process.run()` finds the highest open descriptor by reading `/proc/self/fd` and copies each entry's
///   whole 256-byte name field out of the directory buffer; once the test run holds about 1,350 descriptors (the
///   tests run side by side, with their daemons, sockets and steps), the copy of the last entry reads past the
///   buffer, and the run died of SIGSEGV there;
/// - `Process` learns that a child ended when a descriptor the child inherited closes; sshd, nginx and fcgiwrap
///   close every inherited descriptor as they start, after which Foundation blocks its monitor thread in waitpid on
///   them, and no other `Process` in the test run is ever seen to exit.
public final class SpawnedProcess: @unchecked Sendable {
    // @unchecked: `pid` and the handles are set once in init; the reaping state is under the lock.
    public let pid: pid_t
    /// The write end of its stdin, when started with `input: .pipe`.
    public let input: FileHandle?
    /// The read end of its stdout, when started with `output: .pipe` (its stderr too, unless `errors` says otherwise).
    public let output: FileHandle?
    /// The read end of its stderr, when started with `errors: .pipe`.
    public let errors: FileHandle?
    private let lock = NSLock()
    private var status: Int32?

    public enum Input: Sendable { case null, pipe }
    public enum Output: Sendable {
        case null, pipe
        /// Appended to the file, which is made if missing.
        case file(String)
    }

    /// Starts `executable` with `arguments`, stdin from /dev/null and stdout and stderr appended to `log` (or
    /// /dev/null), in the environment of the tests plus `environment`.
    public convenience init(
        _ executable: String, _ arguments: [String], log: String? = nil, environment: [String: String] = [:]
    ) throws {
        try self.init(
            executable, arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
            output: log.map(Output.file) ?? .null)
    }

    /// Starts `executable` with `arguments` in `environment` (the tests' own when nil) and `directory` (the tests'
    /// own when nil). Stderr goes where `errors` says, or with stdout when it is nil.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]?, directory: String? = nil,
        input: Input = .null, output: Output, errors: Output? = nil
    ) throws {
        guard let addChdir = Self.addChdir, let addClosefrom = Self.addClosefrom else {
            throw TestFailure("this C library cannot start processes in a directory (glibc 2.34 or newer)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Each pipe is made close-on-exec, so that no other child started meanwhile holds one of its ends (a child
        // started here closes everything past its three anyway). Glibc's pipe2 is not declared to Swift.
        var childEnds: [Int32] = []
        defer { childEnds.forEach { close($0) } }
        func pipe() throws -> (read: Int32, write: Int32) {
            var ends: [Int32] = [-1, -1]
            guard Glibc.pipe(&ends) == 0 else { throw TestFailure("pipe: \(String(cString: strerror(errno)))") }
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            return (ends[0], ends[1])
        }
        func connect(_ output: Output, to descriptor: Int32) throws -> FileHandle? {
            switch output {
            case .null:
                posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0)
                return nil
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, descriptor, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
                return nil
            case .pipe:
                let ends = try pipe()
                childEnds.append(ends.write)
                posix_spawn_file_actions_adddup2(&actions, ends.write, descriptor)
                return FileHandle(fileDescriptor: ends.read, closeOnDealloc: true)
            }
        }
        switch input {
        case .null:
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            self.input = nil
        case .pipe:
            let ends = try pipe()
            childEnds.append(ends.read)
            posix_spawn_file_actions_adddup2(&actions, ends.read, 0)
            self.input = FileHandle(fileDescriptor: ends.write, closeOnDealloc: true)
        }
        self.output = try connect(output, to: 1)
        if let errors {
            self.errors = try connect(errors, to: 2)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            self.errors = nil
        }
        _ = addClosefrom(&actions, 3)
        if let directory { _ = addChdir(&actions, directory) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw TestFailure("cannot start \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    deinit {
        stop()
    }

    /// True while the process has not exited.
    public var isRunning: Bool {
        lock.withLock {
            guard status == nil else { return false }
            var waited: Int32 = 0
            let result = waitpid(pid, &waited, WNOHANG)
            if result == pid {
                status = waited
            } else if result < 0 && errno == ECHILD {
                // Reaped by someone else: it has exited, with a status nobody can read now (said as exit 255), and
                // a wait for it must not go on forever.
                status = 255 << 8
            }
            return status == nil
        }
    }

    /// Its exit code once it has exited (128 + N after signal N), else nil.
    public var exitCode: Int32? {
        guard !isRunning else { return nil }
        return lock.withLock {
            guard let status else { return nil }
            let signal = status & 0x7f
            return signal == 0 ? (status >> 8) & 0xff : 128 + signal
        }
    }

    /// Sends `signal` to the process.
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits until the process exits, blocking the thread; returns its exit code.
    @discardableResult
    public func waitUntilExit() -> Int32 {
        while isRunning { usleep(5_000) }
        return exitCode ?? -1
    }

    /// Waits up to `seconds` for the process to exit; returns its exit code (128 + N after signal N), or nil if it
    /// is still running.
    public func waitForExit(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while isRunning && Date() < deadline { usleep(20_000) }
        return exitCode
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
            guard status == nil else { return }
            kill(pid, SIGKILL)
            var waited: Int32 = 0
            while waitpid(pid, &waited, 0) < 0 && errno == EINTR {}
            status = waited
        }
    }

    private typealias AddChdir =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    // Swift's Glibc module does not declare glibc's `_np` spawn actions (they need `_GNU_SOURCE`).
    private static let addChdir: AddChdir? = symbol("posix_spawn_file_actions_addchdir_np")
    private static let addClosefrom: AddClosefrom? = symbol("posix_spawn_file_actions_addclosefrom_np")

    private static func symbol<F>(_ name: String) -> F? {
        guard let handle = dlopen(nil, RTLD_NOW), let address = dlsym(handle, name) else { return nil }
        return unsafeBitCast(address, to: F.self)
    }
}
