import Foundation

/// A directory under the system's temporary directory that is removed when the value is released.
public final class ScratchDirectory: @unchecked Sendable {
    // @unchecked: `path` is immutable; the directory itself belongs to the test that made it.
    public let path: String

    public convenience init(_ label: String = "slipway-test") {
        self.init(label, under: nil)
    }

    /// A directory under `parent` (nil: the system's temporary directory), for trees that should be written to a
    /// particular disk, such as a tmpfs. `parent` is created if it is missing.
    public init(_ label: String, under parent: String?) {
        if let parent { try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
        var template = Array("\(parent ?? NSTemporaryDirectory())/\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed: \(String(cString: strerror(errno)))")
        path = URL(fileURLWithPath: String(cString: made!)).standardizedFileURL.path
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// `path` joined with `component`.
    public func callAsFunction(_ component: String) -> String {
        (path as NSString).appendingPathComponent(component)
    }

    /// Removes `component` under `path`, with everything in it, if it is there.
    public func remove(_ component: String) {
        try? FileManager.default.removeItem(atPath: callAsFunction(component))
    }
}

/// Writes `contents` to `path`, creating parent directories, optionally executable.
public func writeFile(_ path: String, _ contents: String, executable: Bool = false) throws {
    let url = URL(fileURLWithPath: path)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(contents.utf8).write(to: url)
    if executable {
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    }
}

/// The process id a step wrote to `path` (`echo $$ > …`), waiting up to four seconds for the step to write it.
public func processID(writtenTo path: String) async throws -> Int32? {
    for _ in 0..<200 {
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
            let id = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            return id
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    return nil
}
