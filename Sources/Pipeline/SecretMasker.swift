/// Replaces every secret in a line of text with `***`, longest secrets first so that a secret containing another
/// is masked whole.
public struct SecretMasker: Sendable {
    public static let mask = "***"
    private let secrets: [String]

    public init(_ secrets: [String]) {
        self.secrets = Array(Set(secrets.filter { !$0.isEmpty })).sorted { $0.count > $1.count }
    }

    public var isEmpty: Bool { secrets.isEmpty }

    /// The length in bytes of the longest secret (0 without any).
    var longestSecretLength: Int { secrets.map(\.utf8.count).max() ?? 0 }

    /// Where to cut `bytes` near `offset` so that no secret is split and no UTF-8 character either: past the end of
    /// a secret that would straddle `offset`, else back to the start of the character at `offset`.
    func cut(_ bytes: [UInt8], near offset: Int) -> Int {
        var cut = min(offset, bytes.count)
        var moved = true
        while moved {
            moved = false
            for secret in secrets {
                let needle = Array(secret.utf8)
                // Only an occurrence that starts before the cut and ends after it matters.
                for start in max(0, cut - needle.count + 1)..<cut where start + needle.count <= bytes.count {
                    if start + needle.count > cut && bytes[start..<start + needle.count].elementsEqual(needle) {
                        cut = start + needle.count
                        moved = true
                        break
                    }
                }
            }
        }
        if cut == offset {
            while cut > 0 && cut < bytes.count && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        }
        return cut
    }

    public func mask(_ text: String) -> String {
        guard !secrets.isEmpty else { return text }
        var result = text
        for secret in secrets where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: Self.mask)
        }
        return result
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}

extension Substring {
    func range(of target: String) -> Range<Substring.Index>? {
        guard let first = target.first else { return nil }
        var index = startIndex
        while let candidate = self[index...].firstIndex(of: first) {
            if self[candidate...].hasPrefix(target) {
                return candidate..<self.index(candidate, offsetBy: target.count)
            }
            index = self.index(after: candidate)
        }
        return nil
    }
}
