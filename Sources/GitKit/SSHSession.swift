import CLibGit2
import Foundation

/// One `ssh` child process carrying the git protocol: its stdin and stdout are one end of a socket pair (so a write
/// after ssh died fails with EPIPE instead of killing the daemon with SIGPIPE), its stderr a pipe that is read for
/// the reason when something goes wrong.
final class SSHSession {
    let remote: SSHRemote
    let operation: RemoteCallbackState?
    let timeouts: NetworkTimeouts
    private var command: SSHCommand
    private var socket: Int32 = -1
    private var errorPipe: Int32 = -1
    private var pid: pid_t = 0
    private var exitStatus: Int32?
    private var stderrBytes: [UInt8] = []
    /// A private directory holding the askpass program, removed with the session.
    private var askpassDirectory: String?
    /// Whether anything at all came from the remote; a failure before then is ssh's, after it the remote's.
    private var receivedData = false

    init(url: String, service: String, operation: RemoteCallbackState?) throws(GitError) {
        self.operation = operation
        remote = try SSHRemote(url)
        timeouts = operation?.timeouts ?? .default
        let credentials = operation?.credentials ?? .none
        let key = credentials.sshKey(forHost: remote.host, port: remote.port)
        if let key, access(key.privateKeyPath, R_OK) != 0 {
            throw GitError(
                code: .auth, errorClass: .init(rawValue: Int32(GIT_ERROR_SSH.rawValue)),
                message: "no SSH key: the key file \(key.privateKeyPath) cannot be read "
                    + "(\(String(cString: strerror(errno))))", function: "ssh")
        }
        var askpass: String?
        if let passphrase = key?.passphrase, !passphrase.isEmpty {
            askpass = try Self.writeAskpass(into: &askpassDirectory)
        }
        command = SSHCommand(
            remote: remote, service: service, credentials: credentials, timeouts: timeouts, askpass: askpass)
        try spawn()
    }

    deinit {
        finish()
        if let askpassDirectory { try? FileManager.default.removeItem(atPath: askpassDirectory) }
    }

    private var cancellation: FetchCancellation? { operation?.cancellation }

    /// Writes the askpass program at 0700 into a new 0700 directory; returns its path.
    private static func writeAskpass(into directory: inout String?) throws(GitError) -> String {
        var template = Array("\(NSTemporaryDirectory())/slipway-askpass-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw GitError(posix: errno, path: template, function: "mkdtemp")
        }
        directory = String(cString: made)
        let path = String(cString: made) + "/askpass"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o700)
        guard fd >= 0 else { throw GitError(posix: errno, path: path.utf8CString.map { $0 }, function: "open") }
        defer { close(fd) }
        let script = Array(SSHCommand.askpassScript.utf8)
        guard Glibc.write(fd, script, script.count) == script.count else {
            throw GitError(posix: errno, path: path.utf8CString.map { $0 }, function: "write")
        }
        return path
    }

    private func spawn() throws(GitError) {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw spawnError("socketpair", errno)
        }
        var errorEnds: [Int32] = [-1, -1]
        guard makePipe(&errorEnds) else {
            close(pair[0])
            close(pair[1])
            throw spawnError("pipe", errno)
        }
        defer {
            close(pair[1])
            close(errorEnds[1])
        }
        socket = pair[0]
        errorPipe = errorEnds[0]
        _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
        _ = fcntl(errorPipe, F_SETFL, fcntl(errorPipe, F_GETFL) | O_NONBLOCK)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pair[1], 0)
        posix_spawn_file_actions_adddup2(&actions, pair[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errorEnds[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The daemon may block or ignore signals (SIGPIPE above all); ssh must start with the defaults.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var environment = ProcessInfo.processInfo.environment
        for name in command.removedEnvironment { environment[name] = nil }
        environment.merge(command.environment) { $1 }
        let argv = command.arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        let rc = posix_spawnp(&pid, "ssh", &actions, &attributes, argv, envp)
        guard rc == 0 else {
            pid = 0
            throw spawnError("cannot run ssh (is openssh-client installed?)", rc)
        }
    }

    private func spawnError(_ what: String, _ code: Int32) -> GitError {
        GitError(
            code: .generic, errorClass: .init(rawValue: Int32(GIT_ERROR_SSH.rawValue)),
            message: "\(what): \(String(cString: strerror(code)))", function: "ssh")
    }

    /// Reads what the remote sent; 0 means ssh closed the connection cleanly.
    func read(into buffer: UnsafeMutableRawPointer, count: Int) throws(GitError) -> Int {
        let wake = cancellation?.wakeDescriptor ?? -1
        let idle = timeouts.idleMilliseconds
        var deadline = DispatchTime.now().uptimeNanoseconds + UInt64(idle) * 1_000_000
        while true {
            if cancellation?.isCancelled == true { throw GitError.cancelled() }
            let received = recv(socket, buffer, count, 0)
            if received > 0 {
                receivedData = true
                return received
            }
            if received == 0 {
                return try closedByRemote()
            }
            if errno != EAGAIN && errno != EINTR {
                throw spawnError("cannot read from ssh", errno)
            }
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else { throw timedOut() }
            var fds = [
                pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
                pollfd(fd: errorPipe, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
            ]
            let rc = poll(&fds, 3, Int32(clamping: (deadline - now + 999_999) / 1_000_000))
            if rc < 0 && errno != EINTR { throw spawnError("poll", errno) }
            if fds[1].revents != 0 {
                drainStderr()
                // ssh talking (a banner, a warning) is not the remote answering, but it is not silence either.
                deadline = max(deadline, DispatchTime.now().uptimeNanoseconds + UInt64(idle) * 1_000_000)
            }
        }
    }

    /// Sends all of `data` to the remote.
    func write(_ data: UnsafeRawPointer, count: Int) throws(GitError) {
        var done = 0
        while done < count {
            if cancellation?.isCancelled == true { throw GitError.cancelled() }
            let sent = send(socket, data + done, count - done, Int32(MSG_NOSIGNAL))
            if sent >= 0 {
                done += sent
                continue
            }
            if errno == EINTR { continue }
            if errno == EPIPE || errno == ECONNRESET {
                _ = try closedByRemote()
                throw diagnosis()
            }
            guard errno == EAGAIN else { throw spawnError("cannot write to ssh", errno) }
            let outcome = wait(
                for: socket, events: Int16(POLLOUT), milliseconds: timeouts.idleMilliseconds,
                cancellation: cancellation)
            switch outcome {
            case .ready: continue
            case .cancelled: throw GitError.cancelled()
            case .timedOut: throw timedOut()
            }
        }
    }

    /// ssh closed its end: either the remote finished, or ssh gave up and says why on stderr.
    private func closedByRemote() throws(GitError) -> Int {
        collectExit()
        if exitStatus == 0 { return 0 }
        throw diagnosis()
    }

    private func diagnosis() -> GitError {
        let error = SSHDiagnosis.error(
            stderr: String(decoding: stderrBytes, as: UTF8.self), status: exitStatus, remote: remote,
            keyPath: command.keyPath)
        // ssh says only "Permission denied" when a passphrase does not decrypt the key; find out which it was.
        if error.code == .auth, let keyPath = command.keyPath, !command.environment.isEmpty,
            !passphraseDecrypts(keyPath)
        {
            return GitError(
                code: .auth, errorClass: error.errorClass,
                message: "the passphrase of the SSH key \(keyPath) is wrong (Credentials.sshKey.passphrase)",
                function: "ssh")
        }
        return error
    }

    /// Whether the passphrase opens the key: `ssh-keygen -y` reads the key through the same askpass program, so
    /// the passphrase is in no command line here either. Only run after a refusal, never on the way in.
    private func passphraseDecrypts(_ keyPath: String) -> Bool {
        var environment = ProcessInfo.processInfo.environment
        environment.merge(command.environment) { $1 }
        let arguments: [String] = ["ssh-keygen", "-y", "-f", keyPath]
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var child: pid_t = 0
        guard posix_spawnp(&child, "ssh-keygen", &actions, nil, argv, envp) == 0 else { return true }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        return status == 0
    }

    private func timedOut() -> GitError {
        drainStderr()
        let stderr = String(decoding: stderrBytes, as: UTF8.self)
        if !stderr.isEmpty, !receivedData {
            let diagnosed = diagnosis()
            if diagnosed.code != .generic { return diagnosed }
        }
        let phase = receivedData ? "waiting for data from" : "waiting for an answer from"
        return .timedOut("\(phase) \(remote.host) over ssh", after: timeouts.idleMilliseconds)
    }

    private func drainStderr() {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while errorPipe >= 0 {
            let n = Glibc.read(errorPipe, &chunk, chunk.count)
            if n > 0 {
                // Enough to hold ssh's longest message (the changed-host-key banner) several times over.
                if stderrBytes.count < 65_536 { stderrBytes += chunk[0..<n] }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n == 0 {
                close(errorPipe)
                errorPipe = -1
            }
            return
        }
    }

    /// Waits (a little) for ssh to exit after it closed stdout, reading the rest of what it said.
    private func collectExit() {
        let until = DispatchTime.now().uptimeNanoseconds + 2_000_000_000
        while errorPipe >= 0, DispatchTime.now().uptimeNanoseconds < until {
            var fds = [pollfd(fd: errorPipe, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 1, 100)
            drainStderr()
        }
        reap(waitUpTo: 2_000)
    }

    /// Reaps ssh if it exited within `milliseconds`; returns whether it did.
    @discardableResult
    private func reap(waitUpTo milliseconds: Int) -> Bool {
        guard pid > 0, exitStatus == nil else { return true }
        for attempt in 0...milliseconds {
            var status: Int32 = 0
            let rc = waitpid(pid, &status, WNOHANG)
            if rc == pid {
                // WIFEXITED / WEXITSTATUS, which Swift does not import as macros.
                exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                return true
            }
            if rc < 0 && errno != EINTR {
                exitStatus = -1
                return true
            }
            if attempt < milliseconds { usleep(1_000) }
        }
        return false
    }

    /// Ends the session: the remote sees the end of its input, and ssh is reaped (stopped if it lingers).
    func finish() {
        if socket >= 0 {
            close(socket)
            socket = -1
        }
        if pid > 0, exitStatus == nil, !reap(waitUpTo: 0) {
            kill(pid, SIGTERM)
            if !reap(waitUpTo: 1_000) {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                exitStatus = -1
            }
        }
        if errorPipe >= 0 {
            close(errorPipe)
            errorPipe = -1
        }
    }
}
