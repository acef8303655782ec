import CLibGit2
import Foundation

/// A commit, copied out of libgit2 so that it can outlive the repository handle and cross threads.
public struct Commit: Sendable, Hashable {
    public let oid: OID
    public let tree: OID
    public let parents: [OID]
    public let author: Signature
    public let committer: Signature
    /// The message exactly as stored. It is usually UTF-8, but git does not promise that.
    public let rawMessage: [UInt8]
    /// The `encoding` header, when the commit has one.
    public let messageEncoding: String?

    /// The whole message, decoded from its `encoding` header (ISO-8859-1, Shift_JIS, ... through iconv) or else as
    /// UTF-8, leniently: bytes that do not decode become U+FFFD.
    public var message: String { TextDecoding.decode(rawMessage, encoding: messageEncoding) }

    /// The first paragraph of the message, joined into one line, as `git log --oneline` shows it.
    public var summary: String {
        let text = message.drop { $0 == "\n" || $0 == "\r" || $0 == " " }
        var lines: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { break }
            lines.append(Substring(trimmed))
        }
        return lines.joined(separator: " ")
    }

    init(_ commit: OpaquePointer) {
        oid = OID(git_commit_id(commit))
        tree = OID(git_commit_tree_id(commit))
        parents = (0..<git_commit_parentcount(commit)).compactMap { index in
            git_commit_parent_id(commit, index).map(OID.init)
        }
        let encoding = git_commit_message_encoding(commit).map { String(lenientCString: $0) }
        // The encoding header covers the whole commit object, names included, as git log reads it.
        author = Signature(git_commit_author(commit), encoding: encoding)
        committer = Signature(git_commit_committer(commit), encoding: encoding)
        rawMessage = [UInt8](cString: git_commit_message_raw(commit))
        messageEncoding = encoding
    }
}

/// Text from a commit in the encoding it names.
enum TextDecoding {
    /// `bytes` in `encoding` (an iconv name; nil or UTF-8 means UTF-8), as a String. Invalid or unknown input is
    /// decoded leniently as UTF-8 rather than failing: a commit message must never stop a deploy.
    static func decode(_ bytes: [UInt8], encoding: String?) -> String {
        guard let encoding, !isUTF8(encoding), !bytes.isEmpty else {
            return String(decoding: bytes, as: UTF8.self)
        }
        let converter = iconv_open("UTF-8", encoding)
        guard let converter, Int(bitPattern: converter) != -1 else { return String(decoding: bytes, as: UTF8.self) }
        defer { iconv_close(converter) }
        var input = bytes.map { CChar(bitPattern: $0) }
        var output = [CChar](repeating: 0, count: bytes.count * 4 + 16)
        let converted: Int? = input.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                var inPointer: UnsafeMutablePointer<CChar>? = inputBuffer.baseAddress
                var inLeft = inputBuffer.count
                var outPointer: UnsafeMutablePointer<CChar>? = outputBuffer.baseAddress
                var outLeft = outputBuffer.count
                let rc = iconv(converter, &inPointer, &inLeft, &outPointer, &outLeft)
                return rc == -1 ? nil : outputBuffer.count - outLeft
            }
        }
        guard let converted else { return String(decoding: bytes, as: UTF8.self) }
        return String(decoding: output.prefix(converted).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func isUTF8(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return lowered == "utf-8" || lowered == "utf8"
    }
}
