/// A `paths:` pattern: `*` matches within one path segment, `**` across any number of them, `?` one character,
/// and `[abc]` or `[a-z]` one character from a set. A pattern without `/` matches a file name at any depth, as
/// `.gitignore` patterns do.
public struct PathGlob: Sendable, Equatable, CustomStringConvertible {
    public let pattern: String
    private let segments: [String]

    public var description: String { pattern }

    public init?(_ pattern: String) {
        let trimmed = pattern.hasPrefix("/") ? String(pattern.dropFirst()) : pattern
        guard !trimmed.isEmpty, PathGlob.bracketsAreClosed(trimmed) else { return nil }
        self.pattern = pattern
        var segments = trimmed.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if !pattern.contains("/") { segments.insert("**", at: 0) }
        if trimmed.hasSuffix("/") { segments.append("**") }
        self.segments = segments
    }

    public func matches(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        return PathGlob.match(segments[...], parts[...])
    }

    private static func match(_ pattern: ArraySlice<String>, _ path: ArraySlice<String>) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        if first == "**" {
            let rest = pattern.dropFirst()
            if rest.isEmpty { return !path.isEmpty }  // `dir/**` is what is inside dir, not dir itself
            var tail = path
            while true {
                if match(rest, tail) { return true }
                guard !tail.isEmpty else { return false }
                tail = tail.dropFirst()
            }
        }
        guard let segment = path.first, matchSegment(Array(first)[...], Array(segment)[...]) else { return false }
        return match(pattern.dropFirst(), path.dropFirst())
    }

    private static func matchSegment(_ pattern: ArraySlice<Character>, _ name: ArraySlice<Character>) -> Bool {
        guard let first = pattern.first else { return name.isEmpty }
        switch first {
        case "*":
            var tail = name
            while true {
                if matchSegment(pattern.dropFirst(), tail) { return true }
                guard !tail.isEmpty else { return false }
                tail = tail.dropFirst()
            }
        case "?":
            return !name.isEmpty && matchSegment(pattern.dropFirst(), name.dropFirst())
        case "[":
            guard let character = name.first, let close = pattern.dropFirst(2).firstIndex(of: "]") else { return false }
            var set = pattern[(pattern.startIndex + 1)..<close]
            let negated = set.first == "!" || set.first == "^"
            if negated { set = set.dropFirst() }
            var found = false
            var index = set.startIndex
            while index < set.endIndex {
                if index + 2 < set.endIndex, set[index + 1] == "-" {
                    if set[index] <= character && character <= set[index + 2] { found = true }
                    index += 3
                } else {
                    if set[index] == character { found = true }
                    index += 1
                }
            }
            return found != negated && matchSegment(pattern[(close + 1)...], name.dropFirst())
        default:
            return name.first == first && matchSegment(pattern.dropFirst(), name.dropFirst())
        }
    }

    private static func bracketsAreClosed(_ pattern: String) -> Bool {
        var open = false
        var sinceOpen = 0
        for character in pattern {
            if open {
                sinceOpen += 1
                if character == "]" && sinceOpen > 1 { open = false }
                if character == "/" { return false }
            } else if character == "[" {
                open = true
                sinceOpen = 0
            }
        }
        return !open
    }
}
