import CLibGit2

/// A Git object id (a SHA-1), copied out of libgit2.
public struct OID: Hashable, Sendable, CustomStringConvertible, Comparable {
    var raw: git_oid

    init(_ raw: git_oid) {
        self.raw = raw
    }

    init(_ pointer: UnsafePointer<git_oid>) {
        self.raw = pointer.pointee
    }

    /// Parses a full 40-digit hexadecimal sha.
    public init?(hex: String) {
        guard hex.utf8.count == 40, hex.utf8.allSatisfy(\.isHexDigit) else { return nil }
        var raw = git_oid()
        guard git_oid_fromstrn(&raw, hex, 40) == 0 else { return nil }
        self.raw = raw
    }

    /// The id git gives a blob holding `text`'s UTF-8 (what `git hash-object` prints): a stable name for a text.
    public init(blobOf text: String) {
        var raw = git_oid()
        let bytes = Array(text.utf8)
        // Hashing in memory fails only for an unknown object type.
        _ = git_odb_hash(&raw, bytes, bytes.count, GIT_OBJECT_BLOB)
        self.raw = raw
    }

    /// The all-zero id git uses for "no object" (a created or deleted ref).
    public static let zero = OID(git_oid())

    public var isZero: Bool { self == .zero }

    /// The 40-digit hexadecimal sha.
    public var hex: String {
        var buffer = [CChar](repeating: 0, count: 41)
        withUnsafePointer(to: raw) { _ = git_oid_tostr(&buffer, 41, $0) }
        return String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The first seven digits, as git shows them.
    public var short: String { String(hex.prefix(7)) }

    public var description: String { hex }

    public static func == (lhs: OID, rhs: OID) -> Bool {
        withUnsafePointer(to: lhs.raw) { l in withUnsafePointer(to: rhs.raw) { r in git_oid_cmp(l, r) == 0 } }
    }

    public static func < (lhs: OID, rhs: OID) -> Bool {
        withUnsafePointer(to: lhs.raw) { l in withUnsafePointer(to: rhs.raw) { r in git_oid_cmp(l, r) < 0 } }
    }

    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: raw) { hasher.combine(bytes: $0) }
    }
}

extension UInt8 {
    var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
