import Foundation
import Glibc
import SlipwayAPI

/// What the daemon keeps about an app's processes, in `<state>/processes/<app>.json`, so that the next daemon finds
/// them again: each generation with everything needed to run its processes (command, directory, environment), each
/// instance by pid and start time, and the public ports' forwarders.
///
/// It lives beside the store rather than in it because it is about this machine: pids mean nothing on another node
/// that shares a PostgreSQL store. It holds the processes' environment, secrets included, so the file is the
/// daemon's alone (0600).
struct AppProcesses: Codable, Sendable, Equatable {
    var app: String
    var generations: [GenerationRecord] = []
    var forwarders: [ForwarderRecord] = []
    /// The id the next generation gets.
    var nextGeneration: Int64 = 1
    /// The id the next instance gets: an instance keeps its id when a restart of another process carries it into a
    /// new generation.
    var nextInstance: Int64 = 1

    var live: GenerationRecord? { generations.first { $0.role == .live } }
}

/// The processes started together for one release: by a deploy, a rollback or a restart.
struct GenerationRecord: Codable, Sendable, Equatable {
    enum Role: String, Codable, Sendable {
        /// Started, and being checked; it serves nothing yet.
        case starting
        /// The one the public ports send requests to.
        case live
        /// Replaced; it finishes what it has and is stopped.
        case stopping
    }

    var id: Int64
    var release: Int64
    var role: Role
    var processes: [ProcessSpec]
    var instances: [InstanceRecord]
}

/// How to run one process of a generation, fixed when the generation starts: a restart after an exit runs exactly
/// this again, whatever the pipeline file says by then.
struct ProcessSpec: Codable, Sendable, Equatable {
    var name: String
    var run: String
    var directory: String
    /// The steps' environment; each instance adds `PORT`, `SLIPWAY_PROCESS` and `SLIPWAY_INSTANCE`.
    var environment: [String: String]
    var publicPort: Int?
    var instances: Int
    var stopTimeoutMs: Int

    var stopTimeout: Duration { .milliseconds(stopTimeoutMs) }
}

/// One running (or restarting, or crashed) instance of a process.
struct InstanceRecord: Codable, Sendable, Equatable {
    /// Unique within the app.
    var id: Int64
    var process: String
    /// 1-based.
    var index: Int
    /// Its own `PORT`, kept across its restarts so that a forwarder's list of backends stays right.
    var port: Int
    /// Nil while it waits to be started again, and once crashed.
    var identity: ProcessIdentity?
    var status: ProcessStatus
    var startedAt: Date?
    /// Starts after an exit, all told.
    var restarts: Int = 0
    /// When it was started again after an exit, within the last minute: 5 of them make it `crashed`.
    var recentRestarts: [Date] = []
    /// The delay before the next start after an exit.
    var nextDelayMs: Int = 0

    var label: String { "\(process).\(index)" }
}

/// The small process that holds a public port and forwards each connection to the live generation (see
/// `PortForwarder`); it reads where to from `backends`, a file the daemon replaces on every swap.
struct ForwarderRecord: Codable, Sendable, Equatable {
    var process: String
    var port: Int
    var host: String
    var identity: ProcessIdentity
    var backends: String
}

/// Reads and writes `<state>/processes/<app>.json`: a new file under a temporary name, then rename(2), so that a
/// crash leaves the old file or the new one, never half of one.
struct ProcessStateFiles: Sendable {
    let directory: String

    init(stateDirectory: String) {
        directory = stateDirectory + "/processes"
    }

    func path(app: String) -> String { "\(directory)/\(app).json" }

    /// Every app that has a file.
    func apps() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".json") }
            .map { String($0.dropLast(".json".count)) }
            .sorted()
    }

    func read(app: String) -> AppProcesses? {
        guard let data = FileManager.default.contents(atPath: path(app: app)) else { return nil }
        return try? Self.decoder.decode(AppProcesses.self, from: data)
    }

    func write(_ state: AppProcesses) throws {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let data = try Self.encoder.encode(state)
        let final = path(app: state.app)
        let temporary = final + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteNoPermission) }
        let written = data.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        fsync(descriptor)
        close(descriptor)
        guard written == data.count, rename(temporary, final) == 0 else {
            unlink(temporary)
            throw CocoaError(.fileWriteOutOfSpace)
        }
    }

    func remove(app: String) {
        unlink(path(app: app))
    }

    // Keys as the properties are named: a snake-case round trip would turn `bootID` into `bootId`.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()
}
