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
            let process = Process()
            process.executableURL = URL(fileURLWithPath: execPath + "/git-daemon")
            process.arguments = [
                "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=\(port)", "--base-path=\(basePath)",
                basePath,
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            do {
                try process.run()
            } catch {
                lastError = error
                continue
            }
            if Self.waitForListener(port: port, process: process) {
                self.port = port
                self.process = process
                return
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        throw lastError ?? GitCLI.Failure(arguments: ["daemon"], status: -1, output: "no free port for git daemon")
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
