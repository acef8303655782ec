import Dispatch
import Foundation
import Pipeline

/// The output of one of an app's processes: `<state>/logs/processes/<app>/<process>.log`, with the lines Slipway
/// writes about it (started, exited, restarting) in between.
///
/// Every instance writes to the file itself: it is their stdout and stderr, opened for appending. A pipe to the
/// daemon would break (and with it the app's next write) whenever the daemon stops, and the processes must outlive
/// it. The file is bounded by rotation: past `limit` its content moves to `<process>.log.1` and it starts again
/// empty, the way logrotate's `copytruncate` does, since the writers keep their descriptors; a line written in the
/// moment between the copy and the truncation is lost.
struct ProcessLog: Sendable {
    let path: String
    /// The size past which the file is rotated; with the one older file kept, a process's output takes at most
    /// about twice this.
    static let limit = 8 * 1024 * 1024

    init(stateDirectory: String, app: String, process: String) {
        path = "\(stateDirectory)/logs/processes/\(app)/\(process).log"
    }

    var olderPath: String { path + ".1" }

    /// A descriptor to hand to a process as its stdout and stderr (the caller closes its own copy).
    func openForWriting() throws(ProcessLauncher.Failure) -> Int32 {
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o750])
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw ProcessLauncher.Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        return descriptor
    }

    /// One of Slipway's own lines, marked as such and timed.
    func note(_ text: String) {
        guard let descriptor = try? openForWriting() else { return }
        defer { close(descriptor) }
        let line = Array("[slipway \(UTCStamp.now())] \(text)\n".utf8)
        line.withUnsafeBytes { _ = write(descriptor, $0.baseAddress, $0.count) }
    }

    /// Rotates the file if it has grown past `limit`.
    func rotateIfNeeded() {
        var info = stat()
        guard stat(path, &info) == 0, Int(info.st_size) > Self.limit else { return }
        let copy = olderPath + ".tmp"
        unlink(copy)
        guard (try? FileManager.default.copyItem(atPath: path, toPath: copy)) != nil else { return }
        truncate(path, 0)
        rename(copy, olderPath)
        note("rotated: the output before this line is in \((olderPath as NSString).lastPathComponent)")
    }

    /// The whole of what is kept, oldest first: the older file, then the current one.
    func contents(limit: Int = 2 * ProcessLog.limit + 1024 * 1024) -> [UInt8] {
        var bytes: [UInt8] = []
        for file in [olderPath, path] {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            bytes += data
        }
        return bytes.count > limit ? Array(bytes.suffix(limit)) : bytes
    }

    /// Where in the current file the last `count` lines start.
    func offsetOfLastLines(_ count: Int) -> Int {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return 0 }
        var seen = 0
        var index = data.endIndex - 1
        if data[index] == UInt8(ascii: "\n") { index -= 1 }
        while index >= data.startIndex {
            if data[index] == UInt8(ascii: "\n") {
                seen += 1
                if seen == count { return index + 1 - data.startIndex }
            }
            index -= 1
        }
        return 0
    }
}

/// The time in Slipway's lines of a process log: RFC 3339 UTC, to the second.
enum UTCStamp {
    static func now() -> String {
        var seconds = time(nil)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
}

/// The lines added to a file from `offset` on, as they are written: inotify says when the file changes, so nothing
/// polls. A file truncated under it (a rotation) is read again from its start. The stream ends only when its
/// consumer stops.
///
/// Unchecked: the source is set once in init and may be cancelled from any thread; the reading state is behind a
/// lock.
final class FileTail: @unchecked Sendable {
    private struct State {
        var offset: Int
        var partial: [UInt8] = []
    }

    private let file: Int32
    private let notify: Int32
    private let source: DispatchSourceRead
    private let state: Locked<State>

    /// The lines, each without its newline; nil when the file cannot be watched.
    static func lines(of path: String, from offset: Int) -> AsyncStream<String>? {
        let file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { return nil }
        let notify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard notify >= 0, inotify_add_watch(notify, path, UInt32(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE)) >= 0 else {
            close(file)
            if notify >= 0 { close(notify) }
            return nil
        }
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingOldest(4096))
        let tail = FileTail(file: file, notify: notify, offset: offset, continuation: continuation)
        continuation.onTermination = { _ in tail.source.cancel() }
        return stream
    }

    private init(file: Int32, notify: Int32, offset: Int, continuation: AsyncStream<String>.Continuation) {
        self.file = file
        self.notify = notify
        self.state = Locked(State(offset: offset))
        source = DispatchSource.makeReadSource(fileDescriptor: notify, queue: DispatchQueue(label: "slipway.tail"))
        source.setEventHandler { [self] in
            var events = [UInt8](repeating: 0, count: 4096)
            while events.withUnsafeMutableBytes({ read(notify, $0.baseAddress, $0.count) }) > 0 {}
            readNew(into: continuation)
        }
        source.setCancelHandler {
            close(file)
            close(notify)
            continuation.finish()
        }
        // What was written before the watch began.
        source.setRegistrationHandler { [self] in readNew(into: continuation) }
        source.activate()
    }

    /// Reads what was added since the last read and yields its whole lines.
    private func readNew(into continuation: AsyncStream<String>.Continuation) {
        let lines = state.withLock { state -> [String] in
            var info = stat()
            guard fstat(file, &info) == 0 else { return [] }
            if Int(info.st_size) < state.offset {
                state.offset = 0
                state.partial.removeAll()
            }
            var lines: [String] = []
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = chunk.withUnsafeMutableBytes { pread(file, $0.baseAddress, $0.count, off_t(state.offset)) }
                guard n > 0 else { break }
                state.offset += n
                var start = 0
                for index in 0..<n where chunk[index] == UInt8(ascii: "\n") {
                    state.partial += chunk[start..<index]
                    lines.append(String(decoding: state.partial, as: UTF8.self))
                    state.partial.removeAll(keepingCapacity: true)
                    start = index + 1
                }
                state.partial += chunk[start..<n]
            }
            return lines
        }
        for line in lines {
            if case .dropped = continuation.yield(line) {
                source.cancel()
                return
            }
        }
    }
}
