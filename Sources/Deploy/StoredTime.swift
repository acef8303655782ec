import Foundation
import GRDB

/// Timestamps in the store: UTC text like `2026-11-25 10:00:00.123`, the format GRDB itself writes, so the file
/// reads the same in `sqlite3` and stores written before this type existed still load.
///
/// They are made with `gmtime_r` and read with `timegm` rather than through GRDB's `DateFormatter` and `Calendar`:
/// those start ICU, which cost the idle daemon about 2 MB of resident memory, and a formatter call on every write.
enum StoredTime {
    static func text(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var seconds = time_t(milliseconds.floorDivided(by: 1000))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let fraction = Int32(milliseconds - Int64(seconds) * 1000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday)) "
            + "\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)).\(pad(fraction, 3))"
    }

    /// Reads text as written by `text(_:)` (a `T` between date and time, a missing time or fraction and a
    /// trailing `Z` are accepted too), or a number of seconds since 1970, as GRDB does.
    static func date(_ value: DatabaseValue) -> Date? {
        switch value.storage {
        case .int64(let seconds): return Date(timeIntervalSince1970: TimeInterval(seconds))
        case .double(let seconds): return Date(timeIntervalSince1970: seconds)
        case .string(let text): return date(text)
        case .null, .blob: return nil
        }
    }

    static func date(_ text: String) -> Date? {
        var reader = DigitReader(Array(text.utf8))
        guard let year = reader.number(4), reader.skip("-"), let month = reader.number(2), reader.skip("-"),
            let day = reader.number(2), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var hour = 0, minute = 0, second = 0
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

    private static func pad(_ value: Int32, _ width: Int = 2) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}

/// A cursor over ASCII bytes for `StoredTime.date(_:)`.
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

private extension Int64 {
    func floorDivided(by divisor: Int64) -> Int64 {
        let (quotient, remainder) = quotientAndRemainder(dividingBy: divisor)
        return remainder < 0 ? quotient - 1 : quotient
    }
}

/// The conventions every record in the store follows: snake_case columns, and timestamps as `StoredTime` text.
public protocol StoreRecord: FetchableRecord, EncodableRecord {}

extension StoreRecord {
    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    public static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }

    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .custom { StoredTime.text($0) }
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy {
        .custom { StoredTime.date($0) }
    }
}
