/// "Did you mean …?": the known word closest to a typo, for unknown keys, app names and commands.
public enum Suggestion {
    /// The word of `known` within two edits of `word` (case aside), the closest one first in `known`'s order; nil
    /// when none is that close, since a far-fetched guess misleads more than it helps.
    public static func closest(to word: String, in known: [String]) -> String? {
        let typed = Array(word.lowercased())
        let scored = known.map { ($0, distance(typed, Array($0.lowercased()))) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 < $1.1 }?.0
    }

    /// The Levenshtein distance: how many single-character insertions, deletions or substitutions turn `a` into `b`.
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}
