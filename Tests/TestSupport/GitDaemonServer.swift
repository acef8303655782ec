import Foundation

/// `git daemon` serving a directory over `git://` on a free loopback port, for network fetch tests.
public final class GitDaemonServer: @unchecked Sendable {
    // @unchecked: all stored properties are set once in init; the process is only signalled in deinit.
    public let port: Int
    private let process: Process

    public init(basePath: String) throws {
        let execPath = try GitCLI.run(["--exec-path"])
        var lastError: Error?
        for _ in 0..<20 {
            let port = Int.random(in: 20_000...45_000)
            do {
                if let process = try Self.start(execPath: execPath, basePath: basePath, port: port) {
                    self.port = port
                    self.process = process
                    return
                }
            } catch {
                lastError = error
            }
        }
        throw lastError ?? GitCLI.Failure(arguments: ["daemon"], status: -1, output: "no free port for git daemon")
    }

    /// `git daemon` on `port` and no other, for a caller that has chosen the port (a benchmark told which to use).
    public init(basePath: String, port: Int) throws {
        let execPath = try GitCLI.run(["--exec-path"])
        guard let process = try Self.start(execPath: execPath, basePath: basePath, port: port) else {
            throw GitCLI.Failure(
                arguments: ["daemon", "--port=\(port)"], status: -1, output: "git daemon does not listen")
        }
        self.port = port
        self.process = process
    }

    /// The daemon binary itself (`git daemon` would put a wrapper in between), once it accepts connections; nil
    /// when it does not, for example because the port is taken.
    private static func start(execPath: String, basePath: String, port: Int) throws -> Process? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: execPath + "/git-daemon")
        process.arguments = [
            "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=\(port)", "--base-path=\(basePath)",
            basePath,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try startProcess(process)
        if waitForListener(port: port, process: process) { return process }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return nil
    }

    /// The `git://` URL of `name` under the base path.
    public func url(_ name: String) -> String { "git://127.0.0.1:\(port)/\(name)" }

    private static func waitForListener(port: Int, process: Process) -> Bool {
        for _ in 0..<100 {
            guard process.isRunning else { return false }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            close(fd)
            if connected == 0 { return true }
            usleep(20_000)
        }
        return false
    }

    deinit {
        // SIGKILL: a child of Foundation's Process may inherit a mask that blocks SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
