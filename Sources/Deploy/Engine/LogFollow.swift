import Foundation
import Pipeline
import SlipwayAPI

/// One thing a log follower is told.
public enum LogEvent: Sendable, Equatable {
    /// A whole line of the log, with its 1-based line number in the file.
    case line(number: Int, text: String)
    /// The deployment has finished; nothing more will be written.
    case end(API.Deployment)
}

/// A deployment's log, followed: the lines already in the file, read from disk a chunk at a time, then the live
/// lines from the event bus, then `.end`. Made by `Daemon.followLog`, which subscribes before the file is read so
/// that no line written in between is lost (a line that is in both is skipped by its number).
public struct LogFollow: AsyncSequence, Sendable {
    public typealias Element = LogEvent

    private enum Source: Sendable {
        case daemon(DaemonLog)
        case stream(AsyncStream<LogEvent>)
    }

    private let source: Source

    init(
        path: String, after: Int, live: AsyncStream<EventBus.Event>, deploymentID: Int64,
        detail: @escaping @Sendable () async -> API.Deployment?
    ) {
        source = .daemon(DaemonLog(path: path, after: after, live: live, deploymentID: deploymentID, detail: detail))
    }

    /// A log from elsewhere: for an engine other than the daemon.
    public init(_ events: AsyncStream<LogEvent>) {
        source = .stream(events)
    }

    public func makeAsyncIterator() -> Iterator {
        switch source {
        case .daemon(let log): Iterator(daemon: log.makeAsyncIterator())
        case .stream(let events): Iterator(stream: events.makeAsyncIterator())
        }
    }

    public struct Iterator: AsyncIteratorProtocol {
        private var daemon: DaemonLog.Iterator?
        private var stream: AsyncStream<LogEvent>.Iterator?

        fileprivate init(daemon: DaemonLog.Iterator) { self.daemon = daemon }
        fileprivate init(stream: AsyncStream<LogEvent>.Iterator) { self.stream = stream }

        public mutating func next() async -> LogEvent? {
            if stream != nil { return await stream?.next() }
            return await daemon?.next()
        }
    }
}

/// The daemon's own log source: the file, then the event bus.
struct DaemonLog: AsyncSequence, Sendable {
    let path: String
    let after: Int
    let live: AsyncStream<EventBus.Event>
    let deploymentID: Int64
    /// The deployment with its steps, masked; nil when it cannot be read (the follower then ends without `.end`).
    let detail: @Sendable () async -> API.Deployment?

    func makeAsyncIterator() -> Iterator {
        Iterator(follow: self)
    }

    struct Iterator: AsyncIteratorProtocol {
        private enum Stage {
            case file(LogLines)
            /// The deployment was found finished at the end of the file: what was written before its outcome was
            /// saved, after the first read reached the end, is read before `.end`.
            case rest(LogLines, API.Deployment)
            case live(AsyncStream<EventBus.Event>.Iterator)
            case done
        }

        private let follow: DaemonLog
        private var stage: Stage
        /// The number of the last line given out, or skipped as already seen.
        private var seen: Int

        init(follow: DaemonLog) {
            self.follow = follow
            self.stage = .file(LogLines(path: follow.path))
            self.seen = follow.after
        }

        mutating func next() async -> LogEvent? {
            while true {
                switch stage {
                case .file(let lines):
                    // Only whole lines: what follows the last newline is still being written, and comes as an event.
                    if let (number, text) = await lines.next() {
                        guard number > seen else { continue }
                        seen = number
                        return .line(number: number, text: text)
                    }
                    seen = Swift.max(seen, lines.count)
                    guard let detail = await follow.detail() else {
                        stage = .done
                        return nil
                    }
                    if detail.status.isFinished {
                        lines.readOn()
                        stage = .rest(lines, detail)
                        continue
                    }
                    stage = .live(follow.live.makeAsyncIterator())
                case .rest(let lines, let detail):
                    if let (number, text) = await lines.next() {
                        guard number > seen else { continue }
                        seen = number
                        return .line(number: number, text: text)
                    }
                    stage = .done
                    return .end(detail)
                case .live(var events):
                    let event = await events.next()
                    stage = .live(events)
                    switch event {
                    case nil:
                        stage = .done
                        return nil
                    case .log(_, let number, let text)? where number > seen:
                        seen = number
                        return .line(number: number, text: text)
                    case .deployment(let changed)? where changed.id == follow.deploymentID && changed.status.isFinished:
                        stage = .done
                        return await follow.detail().map(LogEvent.end)
                    default:
                        continue
                    }
                case .done:
                    return nil
                }
            }
        }
    }
}

/// A log file's whole lines, read from disk a chunk at a time off the cooperative pool. Bytes that are not UTF-8
/// (a step may print anything) read as U+FFFD rather than making the whole log unreadable.
final class LogLines: Sendable {
    private struct State {
        var buffer: [UInt8] = []
        var count = 0
        var atEnd = false

        mutating func takeLine() -> (Int, String)? {
            guard let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            let text = String(decoding: buffer[..<newline], as: UTF8.self)
            buffer.removeSubrange(...newline)
            count += 1
            return (count, text)
        }
    }

    private let reader: LogReader
    private let state = Locked(State())

    init(path: String) {
        reader = LogReader(path: path)
    }

    /// How many lines were given out.
    var count: Int { state.value.count }

    /// Reads on past the end met before: for what was written since.
    func readOn() {
        state.withLock { $0.atEnd = false }
    }

    /// The next whole line and its number, or nil at the end of what the file holds now.
    func next() async -> (Int, String)? {
        while true {
            if let line = state.withLock({ $0.takeLine() }) { return line }
            if state.value.atEnd { return nil }
            let chunk = await reader.next()
            state.withLock { state in
                if let chunk { state.buffer += chunk } else { state.atEnd = true }
            }
        }
    }
}

/// A deployment's log as it is now, in chunks of raw bytes read from disk as they are asked for: a large log
/// costs a client's request one chunk of memory at a time, not the whole file.
public struct LogChunks: AsyncSequence, Sendable {
    public typealias Element = [UInt8]

    private enum Source: Sendable {
        case file(String)
        case stream(AsyncStream<[UInt8]>)
    }

    private let source: Source

    init(path: String) {
        source = .file(path)
    }

    /// A log from elsewhere: for an engine other than the daemon.
    public init(_ chunks: AsyncStream<[UInt8]>) {
        source = .stream(chunks)
    }

    public func makeAsyncIterator() -> Iterator {
        switch source {
        case .file(let path): Iterator(reader: LogReader(path: path))
        case .stream(let chunks): Iterator(stream: chunks.makeAsyncIterator())
        }
    }

    public struct Iterator: AsyncIteratorProtocol {
        private var reader: LogReader?
        private var stream: AsyncStream<[UInt8]>.Iterator?

        fileprivate init(reader: LogReader) { self.reader = reader }
        fileprivate init(stream: AsyncStream<[UInt8]>.Iterator) { self.stream = stream }

        public mutating func next() async -> [UInt8]? {
            if stream != nil { return await stream?.next() }
            return await reader?.next()
        }
    }
}

/// An open log file, closed when the reader goes.
final class LogReader: Sendable {
    static let chunkSize = 64 * 1024
    private let descriptor: Int32

    init(path: String) {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    func next() async -> [UInt8]? {
        guard descriptor >= 0 else { return nil }
        let descriptor = self.descriptor
        let chunk = await Blocking.run { () -> [UInt8] in
            var chunk = [UInt8](repeating: 0, count: Self.chunkSize)
            let n = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            return n > 0 ? Array(chunk[..<n]) : []
        }
        return chunk.isEmpty ? nil : chunk
    }
}
