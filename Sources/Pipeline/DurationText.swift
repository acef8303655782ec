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
        var milliseconds = Int64(duration.milliseconds)
        if milliseconds == 0 { return "0s" }
        var text = ""
        for (suffix, size) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000), ("ms", 1)]
        where milliseconds >= size {
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

    public static func elapsed(_ duration: Duration) -> String {
        elapsed(milliseconds: duration.milliseconds)
    }
}

extension Duration {
    /// Whole milliseconds.
    public var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

/// Sizes for people: `512 bytes`, `12 KiB`, `3.4 MiB`; and as options write them: `5MiB`, `512K`, `1048576`.
public enum ByteCount {
    /// `5242880`, `512K`, `5M`, `5MiB`, `1G`; nil for anything else, and for zero.
    public static func parse(_ text: String) -> Int? {
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30),
            ("B", 1),
        ]
        for (suffix, size) in units where text.hasSuffix(suffix) {
            guard let number = Int(text.dropLast(suffix.count)), number > 0 else { return nil }
            return number * size
        }
        return Int(text).flatMap { $0 > 0 ? $0 : nil }
    }

    public static func text(_ bytes: Int) -> String {
        if bytes < 1024 { return bytes == 1 ? "1 byte" : "\(bytes) bytes" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let shown = value < 10 ? String(format: "%.1f", value) : String(Int(value.rounded()))
        return "\(shown) \(units[unit])"
    }
}
