import Foundation
import Synchronization

/// The log of one deployment: `<state>/logs/<id>.log`.
///
/// Step output arrives as raw bytes and is cut into lines here, so that secrets are masked whole even when a
/// secret is split across two reads. The file is bounded: once step output reaches `limit` a marker says so and
/// further output is dropped, while Slipway's own status lines still get a little room after it.
public final class DeploymentLog: Sendable {
    public static let defaultLimit = 10 * 1024 * 1024
    /// Room kept after the limit marker for Slipway's own lines, such as the outcome of the deployment.
    static let reserve = 16 * 1024
    /// A line longer than this is written in pieces, cut where no secret is split (see `cutLongLine`).
    static let maximumLineLength = 64 * 1024

    private struct State {
        var fd: Int32
        var written: Int
        var truncated = false
        var partial: [UInt8] = []
        var lines = 0
    }

    public let path: String
    private let limit: Int
    private let masker: SecretMasker
    private let onLine: (@Sendable (Int, String) -> Void)?
    private let state: Mutex<State>

    /// Opens (appending to) the log at `path`. `onLine` sees every line as it is written, already masked, with its
    /// 1-based number in the file, so that a follower who read the file first can skip what it already has.
    public init(
        path: String, secrets: [String] = [], limit: Int = DeploymentLog.defaultLimit,
        onLine: (@Sendable (_ number: Int, _ line: String) -> Void)? = nil
    ) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        var info = stat()
        fstat(fd, &info)
        self.path = path
        self.limit = max(limit, Self.reserve * 2)
        self.masker = SecretMasker(secrets)
        self.onLine = onLine
        let existingLines = info.st_size > 0 ? DeploymentLog.countLines(path) : 0
        self.state = Mutex(State(fd: fd, written: Int(info.st_size), lines: existingLines))
    }

    deinit {
        state.withLock { state in
            if state.fd >= 0 { close(state.fd) }
        }
    }

    /// Writes one of Slipway's own lines (a step header, an outcome).
    public func note(_ line: String) {
        state.withLock { state in
            flushPartial(&state)
            append(Self.asShown(masker.mask(line)), to: &state, fromStep: false)
        }
    }

    /// Takes raw output from a step; complete lines are written, a trailing partial line waits for more.
    public func output(_ bytes: UnsafeRawBufferPointer) {
        state.withLock { state in
            var start = 0
            for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
                state.partial.append(contentsOf: bytes[start..<index])
                emitPartial(&state)
                start = index + 1
            }
            state.partial.append(contentsOf: bytes[start...])
            cutLongLine(&state)
        }
    }

    /// Writes a line longer than the limit in pieces, waiting until the longest secret could be seen whole on either
    /// side of the cut, and never cutting inside a secret or a UTF-8 character.
    private func cutLongLine(_ state: inout State) {
        let lookahead = masker.longestSecretLength
        while state.partial.count > Self.maximumLineLength + lookahead {
            let cut = masker.cut(state.partial, near: Self.maximumLineLength)
            let head = Array(state.partial.prefix(cut))
            state.partial.removeFirst(cut)
            append(masker.mask(String(decoding: head, as: UTF8.self)), to: &state, fromStep: true)
        }
    }

    /// Writes out a partial last line, as when a step ends without a final newline.
    public func flush() {
        state.withLock { flushPartial(&$0) }
    }

    /// The number of bytes in the file.
    public var size: Int { state.withLock { $0.written } }

    private func flushPartial(_ state: inout State) {
        if !state.partial.isEmpty { emitPartial(&state) }
    }

    private func emitPartial(_ state: inout State) {
        let line = String(decoding: state.partial, as: UTF8.self)
        state.partial.removeAll(keepingCapacity: true)
        append(Self.asShown(masker.mask(line)), to: &state, fromStep: true)
    }

    /// A line as a terminal would show it once written: carriage returns at its end (`\r\n` endings, `\r\r\n`
    /// too) are dropped, and one inside it (a progress bar redrawn in place) leaves what came after the last one.
    /// So no line of the log holds a carriage return, which Server-Sent Events would read as a line end: the
    /// text log and its events carry the same lines, with the same numbers.
    static func asShown(_ line: String) -> String {
        var bytes = Substring(line).utf8
        while bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
        guard let lastReturn = bytes.lastIndex(of: UInt8(ascii: "\r")) else { return String(Substring(bytes)) }
        return String(Substring(bytes[bytes.index(after: lastReturn)...]))
    }

    private func append(_ line: String, to state: inout State, fromStep: Bool) {
        let bytes = Array((line + "\n").utf8)
        if fromStep {
            if state.truncated { return }
            if state.written + bytes.count > limit - Self.reserve {
                state.truncated = true
                let marker = "[slipway] the log reached \(limit / 1024 / 1024) MiB; later output was dropped"
                writeAll(Array((marker + "\n").utf8), &state)
                state.lines += 1
                onLine?(state.lines, marker)
                return
            }
        } else if state.written + bytes.count > limit {
            return
        }
        writeAll(bytes, &state)
        state.lines += 1
        onLine?(state.lines, line)
    }

    static func countLines(_ path: String) -> Int {
        guard let data = FileManager.default.contents(atPath: path) else { return 0 }
        return data.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
    }

    private func writeAll(_ bytes: [UInt8], _ state: inout State) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(state.fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return  // a full disk must not take the deployment down with it; the log simply stops
            }
            offset += n
        }
        state.written += bytes.count
    }
}
