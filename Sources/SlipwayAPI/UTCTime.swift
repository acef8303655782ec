import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// UTC timestamps as text, made with `gmtime_r` and read with `timegm`.
///
/// `DateFormatter` and `ISO8601DateFormatter` start ICU, which costs the daemon resident memory and every call a
/// formatter; the formats here never vary, so they are written out by hand.
public enum UTCTime {
    /// RFC 3339 without fractions, as the API writes it: `2026-11-25T10:00:00Z`.
    public static func rfc3339(_ date: Date) -> String {
        let parts = fields(wholeSeconds: Int64(date.timeIntervalSince1970.rounded(.down)))
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T"
            + "\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec))Z"
    }

    /// With milliseconds and a space, as SQLite writes it: `2026-11-25 10:00:00.123`.
    public static func sqlText(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (quotient, remainder) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let seconds = remainder < 0 ? quotient - 1 : quotient
        let parts = fields(wholeSeconds: seconds)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday)) "
            + "\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)).\(pad(Int32(milliseconds - seconds * 1000), 3))"
    }

    /// Reads either form: a date, then optionally `T` or a space and a time with optional seconds and fraction,
    /// then an optional `Z`.
    public static func parse(_ text: String) -> Date? {
        var reader = DigitReader(Array(text.utf8))
        guard let year = reader.number(4), reader.skip("-"), let month = reader.number(2), reader.skip("-"),
            let day = reader.number(2), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var hour = 0
        var minute = 0
        var second = 0
        var fraction = 0.0
        if reader.skip(" ") || reader.skip("T") {
            guard let h = reader.number(2), reader.skip(":"), let m = reader.number(2), h < 24, m < 60 else {
                return nil
            }
            (hour, minute) = (h, m)
            if reader.skip(":") {
                guard let s = reader.number(2), s < 61 else { return nil }
                second = s
                if reader.skip(".") {
                    let digits = reader.digits()
                    guard !digits.isEmpty else { return nil }
                    fraction = Double("0." + String(decoding: digits, as: UTF8.self)) ?? 0
                }
            }
        }
        _ = reader.skip("Z")
        guard reader.atEnd else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)) + fraction)
    }

    private static func fields(wholeSeconds: Int64) -> tm {
        var seconds = time_t(wholeSeconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return parts
    }

    private static func pad(_ value: Int32, _ width: Int = 2) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}

/// A cursor over ASCII bytes, for `UTCTime.parse`.
private struct DigitReader {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index == bytes.count }

    mutating func skip(_ character: Unicode.Scalar) -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
        index += 1
        return true
    }

    /// Exactly `count` digits as a number.
    mutating func number(_ count: Int) -> Int? {
        guard index + count <= bytes.count else { return nil }
        var value = 0
        for byte in bytes[index..<index + count] {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        index += count
        return value
    }

    /// The run of digits from here.
    mutating func digits() -> ArraySlice<UInt8> {
        let start = index
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        return bytes[start..<index]
    }
}
