import Foundation

/// The `export-subst` attribute: `$Format:...$` in a file becomes the commit's details, as `git archive` expands it
/// (git's pretty-format placeholders).
///
/// Supported: `%H %h %T %t %P %p`, author and committer (`a`/`c`) `n N e E l L d D t i I s`, `%s %f %b %B %e`, `%n`,
/// `%%`, `%xNN`, and colours (`%C...`, which expand to nothing, as with colour off). Not supported, and left as they
/// are: ref names (`%d`, `%D`), relative and human dates, signatures, notes, `%(describe)` and padding.
struct ExportSubstitution {
    let commit: Commit
    let abbreviatedCommit: String
    let abbreviatedTree: String
    let abbreviatedParents: [String]

    /// Replaces every `$Format:FORMAT$` in `content`; nil when there is none.
    func expand(_ content: UnsafeRawBufferPointer) -> [UInt8]? {
        let marker = Array("$Format:".utf8)
        var result: [UInt8] = []
        var position = 0
        var changed = false
        while let start = Self.find(marker, in: content, from: position),
            let end = content[(start + marker.count)...].firstIndex(of: UInt8(ascii: "$"))
        {
            result += content[position..<start]
            result += format(Array(content[(start + marker.count)..<end]))
            position = end + 1
            changed = true
        }
        guard changed else { return nil }
        result += content[position...]
        return result
    }

    private static func find(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        var index = from
        while index <= haystack.count - needle.count {
            guard let first = haystack[index...].firstIndex(of: needle[0]),
                first <= haystack.count - needle.count
            else { return nil }
            if memcmp(haystack.baseAddress! + first, needle, needle.count) == 0 { return first }
            index = first + 1
        }
        return nil
    }

    /// Expands one pretty format.
    func format(_ format: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < format.count {
            let byte = format[index]
            guard byte == UInt8(ascii: "%"), index + 1 < format.count else {
                out.append(byte)
                index += 1
                continue
            }
            if let (expansion, consumed) = placeholder(format, at: index + 1) {
                out += expansion
                index += 1 + consumed
            } else {
                out.append(byte)  // an unknown placeholder stays as written, as in git
                index += 1
            }
        }
        return out
    }

    private func placeholder(_ format: [UInt8], at index: Int) -> ([UInt8], Int)? {
        let character = Character(Unicode.Scalar(format[index]))
        let next = index + 1 < format.count ? Character(Unicode.Scalar(format[index + 1])) : nil
        func text(_ string: String) -> [UInt8] { Array(string.utf8) }
        switch character {
        case "%": return ([UInt8(ascii: "%")], 1)
        case "n": return ([10], 1)
        case "H": return (text(commit.oid.hex), 1)
        case "h": return (text(abbreviatedCommit), 1)
        case "T": return (text(commit.tree.hex), 1)
        case "t": return (text(abbreviatedTree), 1)
        case "P": return (text(commit.parents.map(\.hex).joined(separator: " ")), 1)
        case "p": return (text(abbreviatedParents.joined(separator: " ")), 1)
        case "s": return (text(subject), 1)
        case "f": return (text(Self.sanitized(paragraphs.subject.first ?? "")), 1)
        case "b": return (text(body), 1)
        case "B": return (text(commit.message), 1)
        case "e": return (text(commit.messageEncoding ?? ""), 1)
        case "x":
            guard index + 2 < format.count,
                let value = UInt8(String(decoding: format[(index + 1)...(index + 2)], as: UTF8.self), radix: 16)
            else { return nil }
            return ([value], 3)
        case "C":
            // Colours: nothing, as git writes with colour off. %C(...) or one of the named ones.
            if next == "(", let close = format[index...].firstIndex(of: UInt8(ascii: ")")) {
                return ([], close - index + 1)
            }
            for name in ["reset", "red", "green", "blue"] where format[(index + 1)...].starts(with: name.utf8) {
                return ([], 1 + name.utf8.count)
            }
            return nil
        case "a", "c":
            guard let next, let value = person(character == "a" ? commit.author : commit.committer, next) else {
                return nil
            }
            return (text(value), 2)
        default:
            return nil
        }
    }

    private func person(_ signature: Signature, _ field: Character) -> String? {
        switch field {
        case "n", "N": return signature.name
        case "e", "E": return signature.email
        case "l", "L": return String(signature.email.prefix { $0 != "@" })
        case "t": return String(Int(signature.time.timeIntervalSince1970))
        case "d": return GitDate(signature).normal
        case "D": return GitDate(signature).rfc2822
        case "i": return GitDate(signature).isoLike
        case "I": return GitDate(signature).strictISO
        case "s": return GitDate(signature).short
        default: return nil
        }
    }

    /// The first paragraph, its lines joined by spaces with trailing blanks dropped, as git's `%s`.
    var subject: String {
        paragraphs.subject.joined(separator: " ")
    }

    /// Everything after the first paragraph and the blank lines that follow it, as git's `%b`.
    var body: String {
        paragraphs.body
    }

    private var paragraphs: (subject: [String], body: String) {
        let lines = commit.message.split(separator: "\n", omittingEmptySubsequences: false)
        var index = 0
        func isBlank(_ line: Substring) -> Bool { line.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" } }
        while index < lines.count, isBlank(lines[index]) { index += 1 }
        var subject: [String] = []
        while index < lines.count, !isBlank(lines[index]) {
            var line = lines[index]
            while let last = line.last, last == " " || last == "\t" || last == "\r" { line = line.dropLast() }
            subject.append(String(line))
            index += 1
        }
        while index < lines.count, isBlank(lines[index]), index < lines.count - 1 { index += 1 }
        let body = index < lines.count ? lines[index...].joined(separator: "\n") : ""
        return (subject, body)
    }

    /// git's `%f`: the subject with every run of other characters turned into one '-', fit for a file name.
    static func sanitized(_ subject: String) -> String {
        var out = ""
        var space = 2
        let bytes = Array(subject.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            let isTitle =
                (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            if isTitle {
                if space == 1 { out.append("-") }
                space = 0
                out.append(Character(Unicode.Scalar(byte)))
                if byte == UInt8(ascii: ".") {
                    while index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: ".") { index += 1 }
                }
            } else {
                space |= 1
            }
            index += 1
        }
        while let last = out.last, last == "." || last == "-" { out.removeLast() }
        return out
    }
}

/// A signature's time in its own time zone, in the formats git prints.
struct GitDate {
    let parts: tm
    let offsetMinutes: Int
    let seconds: Int

    init(_ signature: Signature) {
        seconds = Int(signature.time.timeIntervalSince1970)
        offsetMinutes = signature.offsetMinutes
        var local = time_t(seconds + offsetMinutes * 60)
        var value = tm()
        gmtime_r(&local, &value)
        parts = value
    }

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
    private var year: String { "\(parts.tm_year + 1900)" }
    private var clock: String { "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))" }
    private var day: String { Self.days[Int(parts.tm_wday)] }
    private var month: String { Self.months[Int(parts.tm_mon)] }

    private func zone(colon: Bool) -> String {
        let sign = offsetMinutes < 0 ? "-" : "+"
        let magnitude = abs(offsetMinutes)
        let hours = two(Int32(magnitude / 60))
        let minutes = two(Int32(magnitude % 60))
        return sign + hours + (colon ? ":" : "") + minutes
    }

    /// `Thu Jan 1 00:00:00 2026 +0000`
    var normal: String { "\(day) \(month) \(parts.tm_mday) \(clock) \(year) \(zone(colon: false))" }
    /// `Thu, 1 Jan 2026 00:00:00 +0000`
    var rfc2822: String { "\(day), \(parts.tm_mday) \(month) \(year) \(clock) \(zone(colon: false))" }
    /// `2026-01-01 00:00:00 +0000`
    var isoLike: String { "\(short) \(clock) \(zone(colon: false))" }
    /// `2026-01-01T00:00:00+00:00`
    var strictISO: String { "\(short)T\(clock)\(zone(colon: true))" }
    /// `2026-01-01`
    var short: String { "\(year)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))" }
}

/// The `ident` attribute as git applies it on checkout: every `$Id$`, and every `$Id: ... $` that has no line break
/// and no inner space (one of another version control system's is kept), becomes `$Id: <blob id> $`.
///
/// libgit2 1.5's ident filter replaces only the first one in a file; git replaces them all.
enum IdentExpansion {
    static func expand(_ content: UnsafeRawBufferPointer, blob: String) -> [UInt8]? {
        let dollar = UInt8(ascii: "$")
        guard content.count >= 4, content.contains(dollar) else { return nil }
        var out: [UInt8] = []
        var index = 0
        var changed = false
        while let found = content[index...].firstIndex(of: dollar) {
            out += content[index...found]
            index = found + 1
            guard content.count - index >= 3, content[index] == UInt8(ascii: "I"),
                content[index + 1] == UInt8(ascii: "d")
            else { continue }
            let after = content[index + 2]
            if after == dollar {
                index += 3
            } else if after == UInt8(ascii: ":") {
                guard let close = content[(index + 3)...].firstIndex(of: dollar) else { break }
                if content[(index + 3)..<close].contains(10) { continue }
                if index + 4 < close, let space = content[(index + 4)..<close].firstIndex(of: UInt8(ascii: " ")),
                    space < close - 1
                {
                    continue
                }
                index = close + 1
            } else {
                continue
            }
            out += Array("Id: \(blob) $".utf8)
            changed = true
        }
        guard changed else { return nil }
        out += content[index...]
        return out
    }
}
