import Foundation

/// Durations as pipeline files write them: `90s`, `5m`, `1h`, `1m30s`, `500ms`.
public enum DurationText {
    /// Parses `text`, or returns nil when it is not a positive duration in that form.
    public static func parse(_ text: String) -> Duration? {
        let units: [(suffix: String, milliseconds: Int64)] = [("ms", 1), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        var rest = Substring(text)
        var total: Int64 = 0
        var lastUnit = Int64.max
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 9, let amount = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.suffix) }), unit.milliseconds < lastUnit else {
                return nil  // a missing unit, an unknown one, or units out of order (`30s1m`)
            }
            rest = rest.dropFirst(unit.suffix.count)
            lastUnit = unit.milliseconds
            total += amount * unit.milliseconds
        }
        return total > 0 ? .milliseconds(total) : nil
    }

    /// Formats a duration the way `parse` reads it, largest units first: `1m30s`.
    public static func format(_ duration: Duration) -> String {
        var milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds == 0 { return "0s" }
        var text = ""
        for (suffix, size) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000), ("ms", 1)] where milliseconds >= size {
            text += "\(milliseconds / size)\(suffix)"
            milliseconds %= size
        }
        return text
    }

    /// How long something took, for people: `36ms`, `4.2s`, `3m05s`. Under a second in milliseconds, so a quick
    /// deploy does not read as `0.0s`.
    public static func elapsed(milliseconds: Int) -> String {
        if milliseconds < 1000 { return "\(max(milliseconds, 0))ms" }
        if milliseconds < 60_000 { return "\(milliseconds / 1000).\(milliseconds % 1000 / 100)s" }
        let seconds = milliseconds / 1000
        return "\(seconds / 60)m" + (seconds % 60 < 10 ? "0" : "") + "\(seconds % 60)s"
    }

    public static func elapsed(from start: Date, to end: Date) -> String {
        elapsed(milliseconds: Int((end.timeIntervalSince(start) * 1000).rounded()))
    }
}
