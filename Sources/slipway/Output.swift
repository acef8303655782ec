import Foundation
import Pipeline

/// Human output: aligned columns, relative times, and colour only on a terminal (and never with NO_COLOR).
enum Output {
    /// Colour when standard output is a terminal, unless NO_COLOR is set to anything but the empty string
    /// (https://no-color.org).
    static let useColour: Bool =
        isatty(STDOUT_FILENO) == 1 && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty

    static func colour(_ text: String, for status: String) -> String {
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

    static func bold(_ text: String) -> String { useColour ? "\u{1B}[1m\(text)\u{1B}[0m" : text }

    /// Rows as aligned columns; `statusColumn` is coloured by its value.
    static func table(_ header: [String], _ rows: [[String]], statusColumn: Int? = nil) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func render(_ row: [String], colour: Bool) -> String {
            row.enumerated().map { index, cell in
                let padded = index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                if colour, index == statusColumn { return Self.colour(padded, for: cell) }
                return padded
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([bold(render(header, colour: false))] + rows.map { render($0, colour: true) }).joined(separator: "\n")
    }

    /// "just now", "5 minutes ago", "3 days ago".
    static func relative(_ timestamp: Any?, now: Date = Date()) -> String {
        guard let text = timestamp as? String, let date = parseDate(text) else { return "-" }
        let seconds = Int(now.timeIntervalSince(date))
        switch seconds {
        case ..<10: return "just now"
        case ..<60: return "\(seconds) seconds ago"
        case ..<120: return "a minute ago"
        case ..<3600: return "\(seconds / 60) minutes ago"
        case ..<7200: return "an hour ago"
        case ..<86400: return "\(seconds / 3600) hours ago"
        case ..<172_800: return "yesterday"
        default: return "\(seconds / 86400) days ago"
        }
    }

    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    static func duration(_ milliseconds: Any?) -> String {
        guard let ms = milliseconds as? Int else { return "-" }
        return DurationText.elapsed(milliseconds: ms)
    }

    static func truncate(_ text: String, _ length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length - 1)) + "…"
    }

    static func json(_ data: Data) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: data),
            let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return String(decoding: data, as: UTF8.self) }
        return String(decoding: pretty, as: UTF8.self)
    }
}

extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String { (self[key] as? String) ?? (self[key].map { "\($0)" } ?? "") }
    func object(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
    func int(_ key: String) -> Int? { self[key] as? Int }
}
