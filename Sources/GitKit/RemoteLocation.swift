import Foundation

/// Where a remote lives, as far as fetching is concerned: on this machine, or across a network transport.
public enum RemoteLocation: Sendable, Equatable {
    /// A repository on this file system: a plain path or a `file://` URL.
    case local(path: String)
    /// An `https://`, `http://`, `ssh://`, `git://` or scp-like (`user@host:path`) URL.
    case network(url: String)

    public init(_ url: String) {
        if url.hasPrefix("file://") {
            let rest = url.dropFirst("file://".count)
            // Foundation's decoding is slow, and most paths have nothing to decode.
            let escaped = rest.utf8.contains(UInt8(ascii: "%"))
            self = .local(path: escaped ? rest.removingPercentEncoding ?? String(rest) : String(rest))
        } else if url.contains("://") {
            self = .network(url: url)
        } else if let colon = url.firstIndex(of: ":"), !url[..<colon].contains("/") {
            self = .network(url: url)  // scp-like syntax, user@host:path
        } else {
            self = .local(path: url)
        }
    }

    /// The URL to hand to libgit2.
    public var url: String {
        switch self {
        case .local(let path): return path
        case .network(let url): return url
        }
    }
}
