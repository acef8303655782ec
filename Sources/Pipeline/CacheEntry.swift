import Yams

/// One entry of a pipeline's `cache:`: a folder a build makes that the next build can start from.
///
///     cache:
///       - path: .venv
///         key: [requirements.txt]
///
/// Before the build steps, the folder is put into the new release from the newest kept release whose key files
/// have the same content in its commit; with no key files it always fits.
public struct CacheEntry: Sendable, Equatable {
    /// The folder, relative to the release directory, written without `.` or empty components.
    public var path: String
    /// Files of the commit, relative to its root, whose content decides whether a cached folder fits.
    public var key: [String]

    public init(path: String, key: [String] = []) {
        self.path = path
        self.key = key
    }
}

extension PipelineDecoder {
    static let cacheKeys = ["path", "key"]

    /// `cache:`: a list of `{path, key}` mappings, or of bare paths (a path with no key files).
    mutating func cacheEntries(_ node: Node) -> [CacheEntry] {
        guard let items = sequence(node, "cache") else { return [] }
        var entries: [CacheEntry] = []
        for item in items {
            guard let entry = cacheEntry(item) else { continue }
            if let other = entries.first(where: { Self.overlaps($0.path, entry.path) }) {
                let relation = other.path == entry.path ? "is cached already" : "overlaps '\(other.path)'"
                fail(at: item, "the cache path \(shown(entry.path)) \(relation); each folder is cached once")
                continue
            }
            entries.append(entry)
        }
        return entries
    }

    private mutating func cacheEntry(_ item: Node) -> CacheEntry? {
        if case .scalar = item {
            return relativePath(item, "cache path").map { CacheEntry(path: $0) }
        }
        guard let fields = mapping(item, allowed: Self.cacheKeys, what: "a cache entry (path and key)") else {
            return nil
        }
        guard let pathNode = fields["path"] else {
            fail(at: item, "a cache entry needs 'path'")
            return nil
        }
        guard let path = relativePath(pathNode, "path") else { return nil }
        var entry = CacheEntry(path: path)
        if let keyNode = fields["key"], let files = sequence(keyNode, "key") {
            for file in files {
                guard let key = relativePath(file, "a key file") else { continue }
                if !entry.key.contains(key) { entry.key.append(key) }
            }
        }
        return entry
    }

    /// A path inside the release directory: relative, with no `..`, written back without `.` or empty parts.
    private mutating func relativePath(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        guard !text.hasPrefix("/") else {
            fail(at: node, "'\(what)' must be relative to the release directory, found \(shown(text))")
            return nil
        }
        let parts = text.split(separator: "/").filter { $0 != "." }
        guard !parts.contains("..") else {
            fail(at: node, "'\(what)' must stay inside the release directory, found \(shown(text))")
            return nil
        }
        guard !parts.isEmpty else {
            fail(at: node, "'\(what)' must name something inside the release directory, found \(shown(text))")
            return nil
        }
        return parts.joined(separator: "/")
    }

    /// Whether one path is the other or lies inside it.
    private static func overlaps(_ a: String, _ b: String) -> Bool {
        a == b || a.hasPrefix(b + "/") || b.hasPrefix(a + "/")
    }
}
