/// Splits a Server-Sent Events byte stream into events as its bytes arrive, in chunks of any size: the client's
/// side of what `HTTPHelpers` sends, for `slipway logs --follow`, `--wait` and `notify`.
public struct EventStreamParser: Sendable {
    public struct Event: Equatable, Sendable {
        public var name: String?
        public var data: String

        public init(name: String?, data: String) {
            self.name = name
            self.data = data
        }
    }

    public init() {}

    private var pending: [UInt8] = []
    private var name: String?
    private var dataLines: [String] = []

    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Event] {
        pending.append(contentsOf: bytes)
        var events: [Event] = []
        var lineStart = pending.startIndex
        while let newline = pending[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
            var line = String(decoding: pending[lineStart..<newline], as: UTF8.self)
            lineStart = newline + 1
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty {
                if !dataLines.isEmpty || name != nil { events.append(Event(name: name, data: dataLines.joined(separator: "\n"))) }
                name = nil
                dataLines = []
            } else if line.hasPrefix("event:") {
                name = line.dropFirst("event:".count).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("data:") {
                var value = line.dropFirst("data:".count)
                if value.hasPrefix(" ") { value = value.dropFirst() }
                dataLines.append(String(value))
            }
            // Anything else (a ":" comment, `id:`, `retry:`) is not needed by a follower.
        }
        pending.removeSubrange(pending.startIndex..<lineStart)
        return events
    }
}
