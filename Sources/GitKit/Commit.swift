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

    /// The whole message, decoded leniently: bytes that are not UTF-8 become U+FFFD.
    public var message: String { String(decoding: rawMessage, as: UTF8.self) }

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
        author = Signature(git_commit_author(commit))
        committer = Signature(git_commit_committer(commit))
        rawMessage = [UInt8](cString: git_commit_message_raw(commit))
        messageEncoding = git_commit_message_encoding(commit).map { String(lenientCString: $0) }
    }
}
