import Foundation

/// The real `git` command line, which tests use to make fixtures and to compare against. Product code never runs it.
public enum GitCLI {
    public struct Failure: Error, CustomStringConvertible {
        public let arguments: [String]
        public let status: Int32
        public let output: String
        public var description: String { "git \(arguments.joined(separator: " ")) exited \(status): \(output)" }
    }

    /// A fixed identity and clock, so fixture commits are the same on every run and every machine.
    public static let environment: [String: String] = [
        "GIT_AUTHOR_NAME": "Ada Lovelace", "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Lovelace", "GIT_COMMITTER_EMAIL": "ada@example.com",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0",
    ]

    /// Runs git with `arguments` in `directory` and returns what it printed on stdout, trimmed.
    @discardableResult
    public static func run(
        _ arguments: [String], in directory: String? = nil, input: Data? = nil,
        environment extra: [String: String] = [:]
    ) throws -> String {
        let data = try runData(arguments, in: directory, input: input, environment: extra)
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs git and returns its raw stdout.
    public static func runData(
        _ arguments: [String], in directory: String? = nil, input: Data? = nil,
        environment extra: [String: String] = [:]
    ) throws -> Data {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("GIT_") }
        env.merge(environment) { $1 }
        env.merge(extra) { $1 }
        let process = try SpawnedProcess(
            "/usr/bin/git", arguments, environment: env, directory: directory, input: input == nil ? .null : .pipe,
            output: .pipe, errors: .pipe)
        if let input, let stdin = process.input {
            stdin.write(input)
            try stdin.close()
        }
        let out = process.output?.readDataToEndOfFile() ?? Data()
        let err = process.errors?.readDataToEndOfFile() ?? Data()
        let status = process.waitUntilExit()
        guard status == 0 else {
            throw Failure(arguments: arguments, status: status, output: String(decoding: out + err, as: UTF8.self))
        }
        return out
    }
}

/// A working repository made with the real git, for tests to commit into and push from.
public struct WorkingRepository: Sendable {
    public let path: String

    /// Runs `git init -b main` in `path`.
    public init(at path: String, branch: String = "main") throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try GitCLI.run(["init", "-q", "-b", branch], in: path)
    }

    /// Writes `files` (path to contents) and commits them all with `message`; returns the new commit's sha.
    @discardableResult
    public func commit(_ message: String, files: [String: String] = [:], executable: Set<String> = []) throws -> String
    {
        for (name, contents) in files {
            try writeFile(
                (path as NSString).appendingPathComponent(name), contents, executable: executable.contains(name))
        }
        try GitCLI.run(["add", "-A"], in: path)
        try GitCLI.run(["commit", "-q", "--allow-empty", "-m", message], in: path)
        return try head()
    }

    public func head() throws -> String {
        try GitCLI.run(["rev-parse", "HEAD"], in: path)
    }

    @discardableResult
    public func git(_ arguments: String...) throws -> String {
        try GitCLI.run(arguments, in: path)
    }
}
