import Foundation

/// The directory the build put the executables in, next to the test bundle.
public var productsDirectory: String {
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = testBinary.deletingLastPathComponent()
    // On Linux the test runner is `<products>/<package>PackageTests.xctest`; elsewhere it may sit in a bundle.
    while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("slipway").path),
        directory.path != "/"
    {
        directory = directory.deletingLastPathComponent()
    }
    return directory.path
}

/// Starts `process`, one at a time across the test run, and only while this process has fewer than
/// `descriptorCeiling` open descriptors.
///
/// Foundation's `Process.run()` on Linux finds the highest open descriptor by reading `/proc/self/fd`, and copies
/// each entry's whole 256-byte name field out of the directory buffer. When the listing fills that buffer (about
/// 1,350 descriptors), the copy of the last entry reads past its end, and the test run dies of SIGSEGV. The tests run
/// side by side, and together they hold hundreds of sockets, pipes and store files, so a start waits until enough of
/// them are closed; it never waits more than a minute.
public func startProcess(_ process: Process) throws {
    try spawnLock.withLock {
        let deadline = Date().addingTimeInterval(60)
        while openDescriptors() >= descriptorCeiling, Date() < deadline { usleep(20_000) }
        try process.run()
    }
}

private let descriptorCeiling = 1000

/// How many descriptors this process has open: the entries of `/proc/self/fd`, counted without reading their names.
private func openDescriptors() -> Int {
    guard let directory = opendir("/proc/self/fd") else { return 0 }
    defer { closedir(directory) }
    var count = 0
    while readdir(directory) != nil { count += 1 }
    return count
}

private let spawnLock = NSLock()

/// Runs `executable` with `arguments` and waits; returns its exit status and everything it printed.
@discardableResult
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: String? = nil,
    directory: String? = nil
) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    let stdin = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try startProcess(process)
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try? stdin.fileHandleForWriting.close()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// `runProcess`, without holding one of Swift's few cooperative threads while the process runs: the tests that
/// start processes run side by side with tests whose work runs on those threads.
@discardableResult
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: String? = nil,
    directory: String? = nil
) async throws -> (status: Int32, output: String) {
    try await offThePool {
        try runProcess(executable, arguments, environment: environment, input: input, directory: directory)
    }
}

/// Runs blocking work on a thread of its own and waits for it without blocking.
public func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

/// The repository's own folder (where Package.swift is), for tests that read its docs, examples and scripts.
public var repositoryRoot: String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}
