import GitKit

/// Repository URLs as webhooks compare them: a trailing `/` or `.git` dropped, the host's case ignored.
///
/// Every webhook delivery normalizes the URLs its payload names, so this works on the string's UTF-8 with the
/// standard library only: Foundation's trimming and searching made it an eighth of a delivery's CPU time.
enum RepositoryURL {
    static func normalize(_ url: String) -> String {
        let start = url.firstIndex { !isSpace($0) } ?? url.endIndex
        let end = url.lastIndex { !isSpace($0) }.map { url.index(after: $0) } ?? start
        var text = String(url[start..<end])
        // A local repository is the same whether written as a path or as a file:// URL.
        if text.hasPrefix("file://") || !text.utf8.contains(UInt8(ascii: ":")) {
            if case .local(let path) = RemoteLocation(text) { text = path }
        }
        while text.utf8.last == UInt8(ascii: "/") { text.removeLast() }
        if text.hasSuffix(".git") { text.removeLast(4) }
        while text.utf8.last == UInt8(ascii: "/") { text.removeLast() }
        // Lower-case the host: the part between "://" (and any user@) and the next "/" or ":".
        if let scheme = schemeSeparator(in: text) {
            let rest = text[scheme.upperBound...]
            let hostEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            let authority = rest[..<hostEnd]
            let host = authority.lastIndex(of: "@").map { authority[authority.index(after: $0)...] } ?? authority
            return text[..<scheme.upperBound].lowercased() + authority[..<host.startIndex] + host.lowercased()
                + rest[hostEnd...]
        }
        if let colon = text.firstIndex(of: ":"), !text[..<colon].utf8.contains(UInt8(ascii: "/")) {
            // scp-like: user@host:path
            let head = text[..<colon]
            let host = head.lastIndex(of: "@").map { head[head.index(after: $0)...] } ?? head
            return head[..<host.startIndex] + host.lowercased() + text[colon...]
        }
        return text
    }

    /// What Foundation's `.whitespaces` holds: tab and the Unicode space separators.
    private static func isSpace(_ character: Character) -> Bool {
        if let ascii = character.asciiValue { return ascii == 0x20 || ascii == 0x09 }
        return character.unicodeScalars.allSatisfy { $0.properties.generalCategory == .spaceSeparator }
    }

    /// The first "://" in `text`.
    private static func schemeSeparator(in text: String) -> Range<String.Index>? {
        var colon = text.startIndex
        while let found = text[colon...].firstIndex(of: ":") {
            let after = text.index(after: found)
            if text[after...].hasPrefix("//") { return found..<text.index(after, offsetBy: 2) }
            colon = after
        }
        return nil
    }
}
