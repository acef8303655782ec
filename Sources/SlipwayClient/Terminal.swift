import Foundation

/// Where output goes, and whether it may be coloured: only on a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string (https://no-color.org).
public struct Terminal: Sendable {
    public var useColour: Bool

    public init(useColour: Bool) {
        self.useColour = useColour
    }

    /// Standard output as it is: a terminal or not, and `NO_COLOR`.
    public static let standardOutput = Terminal(
        useColour: isatty(STDOUT_FILENO) == 1 && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty)

    /// Plain text, for tests and pipes.
    public static let plain = Terminal(useColour: false)

    public func colour(_ text: String, for status: String) -> String {
        guard useColour else { return text }
        let code: String
        switch status {
        case "succeeded", "idle": code = "32"
        case "failed", "timed_out", "config_error", "interrupted": code = "31"
        case "running", "deploying", "queued": code = "33"
        case "cancelled", "superseded", "skipped": code = "90"
        default: return text
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }

    public func bold(_ text: String) -> String { useColour ? "\u{1B}[1m\(text)\u{1B}[0m" : text }

    /// Rows as aligned columns; `statusColumn` is coloured by its value.
    public func table(_ header: [String], _ rows: [[String]], statusColumn: Int? = nil) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func render(_ row: [String], colour: Bool) -> String {
            row.enumerated().map { index, cell in
                let padded =
                    index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                if colour, index == statusColumn { return self.colour(padded, for: cell) }
                return padded
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        return ([bold(render(header, colour: false))] + rows.map { render($0, colour: true) }).joined(separator: "\n")
    }
}

extension String {
    /// Without the spaces at its end. Only there: an empty first column (the `*` of `releases`) is a column too.
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}

/// Writes a line straight to standard output, unbuffered: a pusher waiting on `remote:` lines must see each one as
/// it comes, and in order with everything else written this way.
public func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Writes a line straight to standard output, and says whether it could: false once whoever reads it has gone (a
/// pusher who pressed Ctrl-C, or whose connection dropped).
public func emitChecked(_ line: String) -> Bool {
    let bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
        if written < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += written
    }
    return true
}

/// Writes a line to standard error.
public func emitError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
