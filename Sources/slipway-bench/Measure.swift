import Foundation

/// Runs `body` and returns how long it took, in milliseconds.
func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let elapsed = try clock.measure(body)
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// Prints one result line: `{"case":…,…,"slipway_ms":…,"git_ms":…,"ratio":…}` with keys in a stable order.
func report(_ name: String, _ fields: KeyValuePairs<String, Any>) {
    var parts = ["\"case\":\"\(name)\""]
    for (key, value) in fields {
        switch value {
        case let number as Double: parts.append("\"\(key)\":\((number * 1000).rounded() / 1000)")
        case let number as Int: parts.append("\"\(key)\":\(number)")
        case let flag as Bool: parts.append("\"\(key)\":\(flag)")
        default: parts.append("\"\(key)\":\"\(value)\"")
        }
    }
    print("{" + parts.joined(separator: ",") + "}")
}

/// The `git` command line: the peer these benchmarks measure against.
enum Git {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    @discardableResult
    static func run(
        _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:], input: Data? = nil
    ) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        if let input {
            let pipe = Pipe()
            process.standardInput = pipe
            try process.run()
            pipe.fileHandleForWriting.write(input)
            try pipe.fileHandleForWriting.close()
        } else {
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "git \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// `git daemon` serving one directory on a loopback port, for the `git://` cases.
final class GitDaemon {
    let process = Process()
    let port: Int

    init(basePath: String, port: Int) throws {
        self.port = port
        // The daemon binary itself: `git daemon` would put a wrapper process in between that ignores SIGTERM.
        let execPath = try Git.run(["--exec-path"])
        process.executableURL = URL(fileURLWithPath: execPath + "/git-daemon")
        process.arguments = [
            "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=\(port)",
            "--base-path=\(basePath)", basePath,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until it accepts connections.
        for _ in 0..<100 {
            let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            close(socket)
            if connected == 0 { return }
            usleep(50_000)
        }
    }

    deinit {
        // SIGKILL, not SIGTERM: a child started by Foundation's Process inherits a signal mask that may block SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

func removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

func makeTemporaryDirectory(under parent: String?, label: String) throws -> String {
    let base = parent ?? NSTemporaryDirectory()
    let path = (base as NSString).appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
