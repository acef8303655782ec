import Foundation

/// A real OpenSSH server on a free loopback port, for tests of GitKit's SSH transport: its own configuration, host
/// keys of every type, and one authorized user key per key type and format, all in a scratch directory.
///
/// It logs in as the user running the tests (root is allowed by key), whose shell runs `git-upload-pack`.
public final class SSHServer: @unchecked Sendable {
    // @unchecked: every property is set once in init; the process is only signalled in deinit.
    public let port: Int
    public let directory: String
    /// The user the server lets in: whoever runs the tests.
    public let user: String
    private let process: SpawnedProcess

    /// The host key types the server offers, as ssh-keygen names them.
    public static let hostKeyTypes = ["rsa", "ecdsa", "ed25519"]

    /// One user key: a private key file, its type and format, and its passphrase if it has one.
    public struct UserKey: Sendable, CustomStringConvertible {
        public let name: String
        public let path: String
        public let passphrase: String?
        public var description: String { name }

        public init(name: String, path: String, passphrase: String?) {
            self.name = name
            self.path = path
            self.passphrase = passphrase
        }
    }

    /// Every authorized user key: RSA in PEM and OpenSSH formats, ed25519, ECDSA, and encrypted ones.
    public let userKeys: [UserKey]
    /// A key the server does not accept.
    public let strangerKey: UserKey

    /// True when sshd, ssh and ssh-keygen are installed.
    public static var isAvailable: Bool {
        Loopback.hasProgram("/usr/sbin/sshd") && Loopback.hasProgram("ssh") && Loopback.hasProgram("ssh-keygen")
    }

    public init(in directory: String) throws {
        self.directory = directory
        user = ProcessInfo.processInfo.environment["USER"] ?? String(cString: getpwuid(getuid()).pointee.pw_name)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for type in Self.hostKeyTypes {
            try Self.keygen(["-t", type] + (type == "rsa" ? ["-b", "2048"] : []), path: "\(directory)/host_\(type)")
        }
        let specs: [(name: String, arguments: [String], passphrase: String?)] = [
            ("rsa-pem", ["-t", "rsa", "-b", "2048", "-m", "PEM"], nil),
            ("rsa-openssh", ["-t", "rsa", "-b", "2048"], nil),
            ("ed25519", ["-t", "ed25519"], nil),
            ("ecdsa", ["-t", "ecdsa", "-b", "256"], nil),
            ("ed25519-passphrase", ["-t", "ed25519"], "correct horse 'battery' $staple"),
            ("rsa-pem-passphrase", ["-t", "rsa", "-b", "2048", "-m", "PEM"], "s3cret"),
        ]
        var keys: [UserKey] = []
        var authorized = ""
        for spec in specs {
            let path = "\(directory)/user_\(spec.name)"
            try Self.keygen(spec.arguments, path: path, passphrase: spec.passphrase ?? "")
            authorized += try String(contentsOfFile: path + ".pub", encoding: .utf8)
            keys.append(UserKey(name: spec.name, path: path, passphrase: spec.passphrase))
        }
        userKeys = keys
        try Self.keygen(["-t", "ed25519"], path: "\(directory)/stranger")
        strangerKey = UserKey(name: "stranger", path: "\(directory)/stranger", passphrase: nil)
        try writeFile("\(directory)/authorized_keys", authorized)
        if getuid() == 0 {
            // sshd running as root wants its privilege separation directory, which only the service unit makes.
            try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        }

        var lastError: Error = LoopbackError("sshd did not start")
        for _ in 0..<5 {
            let port = try Loopback.freePort()
            let config = """
                Port \(port)
                ListenAddress 127.0.0.1
                \(Self.hostKeyTypes.map { "HostKey \(directory)/host_\($0)" }.joined(separator: "\n"))
                AuthorizedKeysFile \(directory)/authorized_keys
                StrictModes no
                UsePAM no
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                PubkeyAuthentication yes
                PermitRootLogin prohibit-password
                AllowTcpForwarding yes
                PidFile none
                LogLevel VERBOSE

                """
            try writeFile("\(directory)/sshd_config", config)
            let process = try SpawnedProcess(
                "/usr/sbin/sshd", ["-D", "-e", "-f", "\(directory)/sshd_config"], log: "\(directory)/sshd.log")
            if Loopback.waitForListener(port: port, while: { process.isRunning }) {
                self.port = port
                self.process = process
                return
            }
            process.stop()
            lastError = LoopbackError(
                "sshd did not start: \((try? String(contentsOfFile: "\(directory)/sshd.log", encoding: .utf8)) ?? "")")
        }
        throw lastError
    }

    deinit {
        process.stop()
    }

    /// What sshd logged so far, for a failing test's message.
    public var log: String { (try? String(contentsOfFile: "\(directory)/sshd.log", encoding: .utf8)) ?? "" }

    /// The known_hosts line for this server's `type` host key (`[127.0.0.1]:port ssh-ed25519 AAAA...`), hashed
    /// as `ssh-keygen -H` writes it when `hashed` is true.
    public func knownHostsLine(type: String, host: String = "127.0.0.1", hashed: Bool = false) throws -> String {
        let key = try String(contentsOfFile: "\(directory)/host_\(type).pub", encoding: .utf8)
            .split(separator: " ").prefix(2).joined(separator: " ")
        let plain = "[\(host)]:\(port) \(key)\n"
        guard hashed else { return plain }
        let file = "\(directory)/hash-\(UUID().uuidString)"
        try writeFile(file, plain)
        defer {
            try? FileManager.default.removeItem(atPath: file)
            try? FileManager.default.removeItem(atPath: file + ".old")
        }
        _ = try Self.run("/usr/bin/ssh-keygen", ["-q", "-H", "-f", file])
        return try String(contentsOfFile: file, encoding: .utf8)
    }

    /// Writes a known_hosts file with the given lines; returns its path.
    public func writeKnownHosts(_ lines: [String], name: String = UUID().uuidString) throws -> String {
        let path = "\(directory)/known_hosts-\(name)"
        try writeFile(path, lines.joined())
        return path
    }

    /// `ssh://user@127.0.0.1:port/<path>`.
    public func url(_ path: String) -> String { "ssh://\(user)@127.0.0.1:\(port)\(path)" }

    private static func keygen(_ arguments: [String], path: String, passphrase: String = "") throws {
        _ = try run("/usr/bin/ssh-keygen", ["-q"] + arguments + ["-N", passphrase, "-C", "slipway-test", "-f", path])
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let (status, output) = try runProcess(executable, arguments)
        guard status == 0 else {
            throw LoopbackError("\(executable) \(arguments.joined(separator: " ")) exited \(status): \(output)")
        }
        return output
    }
}
