import Foundation

/// The exclusive lock that makes one daemon the only one on a state directory: `flock(2)` on `<state>/lock`,
/// taken before anything else (recovery included) and held until the process exits, however it exits. The file
/// says which process holds it and on which port it listens, for the next one to name.
public final class StateLock: Sendable {
    /// Another daemon holds the lock.
    public struct Held: Error, Sendable, CustomStringConvertible {
        public let stateDirectory: String
        /// The holder's pid and port, as it wrote them (nil when it had not written them yet).
        public let pid: Int32?
        public let port: Int?

        public var description: String {
            var holder = "another slipway daemon"
            if let pid { holder += " (pid \(pid)" + (port.map { ", port \($0)" } ?? "") + ")" }
            return "\(holder) is already running on the state directory \(stateDirectory); stop it first, or give "
                + "this one another --state"
        }
    }

    /// The state directory could not be made or locked at all.
    public struct Unusable: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public let path: String
    private let descriptor: Int32

    /// Takes the lock on `stateDirectory` (creating the directory if needed), or throws `Held` at once.
    public init(stateDirectory: String) throws {
        let directory = URL(fileURLWithPath: stateDirectory).standardizedFileURL.path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw Unusable(description: "cannot create the state directory \(directory): \(error.localizedDescription)")
        }
        path = directory + "/lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw Unusable(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = Self.holder(path)
            close(descriptor)
            if code == EWOULDBLOCK {
                throw Held(stateDirectory: directory, pid: holder.pid, port: holder.port)
            }
            throw Unusable(description: "cannot lock \(path): \(String(cString: strerror(code)))")
        }
        write("pid \(getpid())\n")
    }

    deinit {
        close(descriptor)
    }

    /// Adds the port this daemon listens on to the lock file.
    public func record(port: Int) {
        write("pid \(getpid())\nport \(port)\n")
    }

    private func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = ftruncate(descriptor, 0)
        _ = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// What the holder wrote: `pid N` and `port P` lines.
    static func holder(_ path: String) -> (pid: Int32?, port: Int?) {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var pid: Int32?
        var port: Int?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { continue }
            if parts[0] == "pid" { pid = Int32(parts[1]) }
            if parts[0] == "port" { port = Int(parts[1]) }
        }
        return (pid, port)
    }
}
