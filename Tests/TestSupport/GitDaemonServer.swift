import Foundation

/// `git daemon` serving a directory over `git://` on a free loopback port, for network fetch tests.
public final class GitDaemonServer: @unchecked Sendable {
    // @unchecked: all stored properties are set once in init; the process is only signalled in deinit.
    public let port: Int
    private let process: SpawnedProcess

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
    private static func start(execPath: String, basePath: String, port: Int) throws -> SpawnedProcess? {
        let process = try SpawnedProcess(
            execPath + "/git-daemon",
            [
                "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=\(port)", "--base-path=\(basePath)",
                basePath,
            ])
        if Loopback.waitForListener(port: port, while: { process.isRunning }) { return process }
        process.stop()
        return nil
    }

    /// The `git://` URL of `name` under the base path.
    public func url(_ name: String) -> String { "git://127.0.0.1:\(port)/\(name)" }
}
