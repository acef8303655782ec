import Yams

/// What a YAML scalar means under YAML 1.1, the schema Yams and most tools that read pipeline files follow: the
/// rules of `Yams.Resolver.default`, written out as small scanners over the scalar's bytes.
///
/// Yams compiles those rules with `NSRegularExpression`, which starts ICU's regular expressions and character data;
/// Swift's `Regex` parses its patterns at run time with `_RegexParser`. Either kept a megabyte or more of library
/// code resident in an idle daemon, for seven patterns over ASCII. Every rule is a whole match, and no rule needs
/// backtracking: each repetition stops at a byte that nothing after it could use.
enum YAMLSchema {
    /// The tag a node resolves to: an explicit tag (a quoted scalar is `!!str`), else the first rule a plain
    /// scalar matches in full, else `!!str`; `!!map` and `!!seq` for the collections.
    static func tag(of node: Node) -> Tag.Name {
        // (`Tag.name` is internal to Yams; `description` is its raw value.)
        guard case .scalar(let scalar) = node, Tag.Name(rawValue: scalar.tag.description) == .implicit else {
            return Resolver.basic.resolveTag(of: node)
        }
        return tag(ofPlain: scalar.string)
    }

    /// The rules in Resolver.default's order: the first match wins ("0" is an int before it is a float).
    static func tag(ofPlain text: String) -> Tag.Name {
        let bytes = Array(text.utf8)
        if booleans.contains(text) { return .bool }
        if isInt(bytes) { return .int }
        if isFloat(bytes) { return .float }
        if text == "<<" { return .merge }
        if nulls.contains(text) { return .null }
        if isTimestamp(bytes) { return .timestamp }
        if text == "=" { return .value }
        return .str
    }

    private static let booleans: Set<String> = [
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON",
        "off", "Off", "OFF",
    ]
    private static let nulls: Set<String> = ["~", "null", "Null", "NULL", ""]

    /// `[-+]?0b[0-1_]+ | [-+]?0o?[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+
    /// | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+`
    static func isInt(_ bytes: [UInt8]) -> Bool {
        var text = ByteCursor(bytes)
        text.skipSign()
        if text.skip("0") {
            if text.atEnd { return true }
            if text.skip("b") { return text.skipRun(while: \.isBinaryDigitOrUnderscore) > 0 && text.atEnd }
            if text.skip("x") { return text.skipRun(while: \.isHexDigitOrUnderscore) > 0 && text.atEnd }
            _ = text.skip("o")
            return text.skipRun(while: \.isOctalDigitOrUnderscore) > 0 && text.atEnd
        }
        guard text.skip(where: { $0.isDigit && $0 != UInt8(ascii: "0") }) else { return false }
        text.skipRun(while: \.isDigitOrUnderscore)
        return text.atEnd || (text.skipSexagesimal() && text.atEnd)
    }

    /// `[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)? | \.[0-9_]+(?:[eE][-+][0-9]+)?
    /// | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)`
    static func isFloat(_ bytes: [UInt8]) -> Bool {
        var text = ByteCursor(bytes)
        if text.skip(".") {
            // Unsigned: a fraction with a signed exponent, infinity or not-a-number.
            if ["inf", "Inf", "INF", "nan", "NaN", "NAN"].contains(text.rest) { return true }
            guard text.skipRun(while: \.isDigitOrUnderscore) > 0 else { return false }
            if text.atEnd { return true }
            return text.skip(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") })
                && text.skip(where: \.isSign)
                && text.skipRun(while: \.isDigit) > 0 && text.atEnd
        }
        text.skipSign()
        if text.skip(".") { return ["inf", "Inf", "INF"].contains(text.rest) }
        guard text.skip(where: \.isDigit) else { return false }
        text.skipRun(while: \.isDigitOrUnderscore)
        var decimal = text
        if decimal.skip(".") { decimal.skipRun(while: \.isDigitOrUnderscore) }
        if decimal.skip(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            decimal.skipSign()
            if decimal.skipRun(while: \.isDigit) > 0, decimal.atEnd { return true }
        } else if decimal.atEnd {
            return true
        }
        guard text.skipSexagesimal(), text.skip(".") else { return false }
        text.skipRun(while: \.isDigitOrUnderscore)
        return text.atEnd
    }

    /// `[0-9]{4}-[0-9]{2}-[0-9]{2} | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}
    /// (?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?`
    static func isTimestamp(_ bytes: [UInt8]) -> Bool {
        var text = ByteCursor(bytes)
        guard text.skipRun(while: \.isDigit, upTo: 4) == 4, text.skip("-") else { return false }
        let month = text.skipRun(while: \.isDigit, upTo: 2)
        guard month > 0, text.skip("-") else { return false }
        let day = text.skipRun(while: \.isDigit, upTo: 2)
        guard day > 0 else { return false }
        if text.atEnd { return month == 2 && day == 2 }
        guard text.skip("T") || text.skip("t") || text.skipRun(while: \.isBlank) > 0 else { return false }
        guard text.skipRun(while: \.isDigit, upTo: 2) > 0, text.skip(":"), text.skipRun(while: \.isDigit, upTo: 2) == 2,
            text.skip(":"), text.skipRun(while: \.isDigit, upTo: 2) == 2
        else { return false }
        if text.skip(".") { text.skipRun(while: \.isDigit) }
        if text.atEnd { return true }
        text.skipRun(while: \.isBlank)
        if text.skip("Z") { return text.atEnd }
        guard text.skip(where: \.isSign), text.skipRun(while: \.isDigit, upTo: 2) > 0 else { return false }
        if text.skip(":") { guard text.skipRun(while: \.isDigit, upTo: 2) == 2 else { return false } }
        return text.atEnd
    }
}

/// A position in a scalar's bytes, for the scanners above.
private struct ByteCursor {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index == bytes.count }
    var rest: String { String(decoding: bytes[index...], as: UTF8.self) }

    mutating func skip(where matches: (UInt8) -> Bool) -> Bool {
        guard index < bytes.count, matches(bytes[index]) else { return false }
        index += 1
        return true
    }

    mutating func skip(_ character: Unicode.Scalar) -> Bool {
        skip(where: { $0 == UInt8(ascii: character) })
    }

    mutating func skipSign() { _ = skip(where: \.isSign) }

    /// Skips up to `limit` bytes that match, and says how many it skipped.
    @discardableResult
    mutating func skipRun(while matches: (UInt8) -> Bool, upTo limit: Int = .max) -> Int {
        var count = 0
        while count < limit, skip(where: matches) { count += 1 }
        return count
    }

    /// `(?::[0-5]?[0-9])+`: a second digit is taken when the first allows it, because a digit left behind could
    /// neither start another group nor end the scalar.
    mutating func skipSexagesimal() -> Bool {
        var groups = 0
        while skip(":") {
            guard index < bytes.count, bytes[index].isDigit else { return false }
            let first = bytes[index]
            index += 1
            if first <= UInt8(ascii: "5") { _ = skip(where: \.isDigit) }
            groups += 1
        }
        return groups > 0
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    fileprivate var isDigitOrUnderscore: Bool { isDigit || self == UInt8(ascii: "_") }
    fileprivate var isBinaryDigitOrUnderscore: Bool {
        self == UInt8(ascii: "0") || self == UInt8(ascii: "1") || self == UInt8(ascii: "_")
    }
    fileprivate var isOctalDigitOrUnderscore: Bool {
        (self >= UInt8(ascii: "0") && self <= UInt8(ascii: "7")) || self == UInt8(ascii: "_")
    }
    fileprivate var isHexDigitOrUnderscore: Bool {
        isDigitOrUnderscore || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f"))
            || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
    fileprivate var isSign: Bool { self == UInt8(ascii: "+") || self == UInt8(ascii: "-") }
    fileprivate var isBlank: Bool { self == UInt8(ascii: " ") || self == UInt8(ascii: "\t") }
}
