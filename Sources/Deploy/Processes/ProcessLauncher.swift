import Foundation

/// Starts a long-running process that does not depend on the daemon: in a session of its own (so that neither a
/// signal to the daemon's process group nor the daemon's exit reaches it), with every signal at its default and
/// none blocked, stdin from `/dev/null`, stdout and stderr on a file it writes itself, and no other descriptor of
/// the daemon's (the state lock, sockets, the store) inherited.
///
/// Swift's Glibc module does not declare glibc's `_np` spawn actions (they need `_GNU_SOURCE`), so the two used here
/// are looked up by name; they are in glibc since 2.34.
enum ProcessLauncher {
    struct Launch: Sendable {
        var executable: String
        var arguments: [String]
        var environment: [String: String]
        var directory: String
        /// Becomes the process's stdout and stderr.
        var output: Int32
        /// Becomes the process's descriptor 3, when given (a readiness pipe).
        var extra: Int32?
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts `launch` and returns its pid.
    static func spawn(_ launch: Launch) throws(Failure) -> pid_t {
        guard let addChdir = Self.addChdir, let addClosefrom = Self.addClosefrom else {
            throw Failure(description: "this C library cannot start processes in a directory (glibc 2.34 or newer)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, launch.output, 1)
        posix_spawn_file_actions_adddup2(&actions, launch.output, 2)
        if let extra = launch.extra { posix_spawn_file_actions_adddup2(&actions, extra, 3) }
        _ = addClosefrom(&actions, launch.extra == nil ? 3 : 4)
        guard addChdir(&actions, launch.directory) == 0 else {
            throw Failure(description: "cannot use the directory \(launch.directory)")
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | setSession)

        let argv = ([launch.executable] + launch.arguments).map { strdup($0) } + [nil]
        let envp = launch.environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, launch.executable, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw Failure(description: "cannot start \(launch.executable): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// `POSIX_SPAWN_SETSID` from glibc's spawn.h, hidden behind `_GNU_SOURCE` like the actions.
    private static let setSession: Int16 = 0x80

    private typealias AddChdir =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    private static let addChdir: AddChdir? = symbol("posix_spawn_file_actions_addchdir_np")
    private static let addClosefrom: AddClosefrom? = symbol("posix_spawn_file_actions_addclosefrom_np")

    /// A C function of the process's own libraries, by name.
    static func symbol<F>(_ name: String) -> F? {
        guard let handle = dlopen(nil, RTLD_NOW), let address = dlsym(handle, name) else { return nil }
        return unsafeBitCast(address, to: F.self)
    }
}
