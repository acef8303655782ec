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

/// Runs `executable` with `arguments` and waits; returns its exit status and everything it printed.
@discardableResult
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: String? = nil,
    directory: String? = nil
) throws -> (status: Int32, output: String) {
    let process = try SpawnedProcess(
        executable, arguments, environment: environment, directory: directory, input: input == nil ? .null : .pipe,
        output: .pipe)
    if let input, let stdin = process.input {
        stdin.write(Data(input.utf8))
        try? stdin.close()
    }
    let data = process.output?.readDataToEndOfFile() ?? Data()
    return (process.waitUntilExit(), String(decoding: data, as: UTF8.self))
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
