/// Splits a Server-Sent Events byte stream into events as its bytes arrive, in chunks of any size: the client's side
/// of what the server's `SSE` writes, for `slipway logs --follow`, `--wait` and `notify`.
public struct EventStreamParser: Sendable {
    public struct Event: Equatable, Sendable {
        public var name: String?
        /// The event's `id:`, which a client sends back as `Last-Event-ID` when it reconnects.
        public var id: String?
        public var data: String

        public init(name: String?, id: String? = nil, data: String) {
            self.name = name
            self.id = id
            self.data = data
        }
    }

    public init() {}

    private var pending: [UInt8] = []
    private var name: String?
    private var id: String?
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
                if !dataLines.isEmpty || name != nil {
                    events.append(Event(name: name, id: id, data: dataLines.joined(separator: "\n")))
                }
                name = nil
                id = nil
                dataLines = []
            } else if line.hasPrefix("event:") {
                name = Self.value(of: line, after: "event:")
            } else if line.hasPrefix("id:") {
                id = Self.value(of: line, after: "id:")
            } else if line.hasPrefix("data:") {
                dataLines.append(Self.value(of: line, after: "data:"))
            }
            // Anything else (a ":" comment, `retry:`) is not needed by a follower.
        }
        pending.removeSubrange(pending.startIndex..<lineStart)
        return events
    }

    /// A field's value: what follows its name and colon, without the one space that may come first.
    private static func value(of line: String, after field: String) -> String {
        var value = line.dropFirst(field.count)
        if value.hasPrefix(" ") { value = value.dropFirst() }
        return String(value)
    }
}
