import Foundation

/// What Slipway reads from a push delivery: where it happened, and which refs moved to what.
struct ForgePush: Equatable {
    struct Change: Equatable {
        var ref: String
        var after: String
    }

    var repositoryURLs: [String]
    var changes: [Change]
}

/// The few fields Slipway reads from a delivery's body, decoded from each forge's documented payload. Only these
/// fields are decoded, rather than building the whole JSON object, which costs a flood of deliveries much more;
/// everything else is skipped, and a field of an unexpected type reads as absent.
struct ForgePayload: Decodable {
    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// GitHub's, Gitea's and GitLab's pushed ref and its new commit.
    var ref: String?
    var after: String?
    var repository: Repository?
    /// GitLab's project, which names the repository too.
    var project: Repository?
    /// Bitbucket Cloud: `push.changes`.
    var cloudChanges: [BitbucketCloudChange]?
    /// Bitbucket Server and Data Center: `changes`.
    var serverChanges: [BitbucketServerChange]?

    init(from decoder: any Decoder) throws {
        let fields = try decoder.container(keyedBy: JSONKey.self)
        ref = fields.lenient("ref")
        after = fields.lenient("after")
        repository = fields.lenient("repository")
        project = fields.lenient("project")
        cloudChanges = fields.object("push")?.lenient("changes")
        serverChanges = fields.lenient("changes")
    }

    private static let decoder = JSONDecoder()

    /// The JSON of a delivery: its body, or, for GitHub's default content type `application/x-www-form-urlencoded`,
    /// the `payload` form field (the signature is still over the raw body).
    static func json(of delivery: ForgeDelivery) -> [UInt8] {
        let type = delivery.headers["content-type"]?.lowercased() ?? ""
        guard type.hasPrefix("application/x-www-form-urlencoded") else { return delivery.body }
        for field in delivery.body.split(separator: UInt8(ascii: "&")) where field.starts(with: Array("payload=".utf8))
        {
            let encoded = String(decoding: field.dropFirst("payload=".utf8.count), as: UTF8.self)
            let spaced = encoded.replacingOccurrences(of: "+", with: " ")
            return Array((spaced.removingPercentEncoding ?? "").utf8)
        }
        return []
    }

    /// The body decoded, or nil when it is not a JSON object.
    static func decode(_ body: [UInt8]) -> ForgePayload? {
        try? decoder.decode(ForgePayload.self, from: Data(body))
    }

    /// The repository URLs in any delivery (push or not), used to pick which secrets can sign it.
    func repositoryURLs(_ forge: Forge) -> [String] {
        var urls: [String] = []
        func add(_ names: [String], of repository: Repository?) {
            for name in names { if let url = repository?.fields[name], !url.isEmpty { urls.append(url) } }
        }
        switch forge {
        case .github, .gitea:
            add(["clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url"], of: repository)
        case .gitlab:
            add(["git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url", "url"], of: project)
            add(["git_http_url", "git_ssh_url", "homepage", "url"], of: repository)
        case .bitbucket:
            urls += ([repository?.htmlLink] + (repository?.cloneLinks ?? [])).compactMap { $0 }.filter { !$0.isEmpty }
            if let fullName = repository?.fields["full_name"] {
                urls += [
                    "https://bitbucket.org/\(fullName)", "git@bitbucket.org:\(fullName)",
                    "ssh://git@bitbucket.org/\(fullName)",
                ]
            }
        }
        return urls
    }

    /// What a push delivery says moved. `payload` is nil when the body was not a JSON object.
    static func push(_ forge: Forge, _ payload: ForgePayload?) throws(Malformed) -> ForgePush {
        guard let payload else { throw Malformed(description: "the body is not valid JSON, or not a JSON object") }
        let changes: [ForgePush.Change]
        switch forge {
        case .github, .gitea, .gitlab:
            guard let ref = payload.ref, let after = payload.after else {
                throw Malformed(description: "a push payload needs 'ref' and 'after'")
            }
            changes = [ForgePush.Change(ref: ref, after: after)]
        case .bitbucket:
            if let list = payload.cloudChanges {
                changes = list.compactMap(\.change)
            } else if let list = payload.serverChanges {
                changes = list.compactMap(\.change)
            } else {
                throw Malformed(description: "a Bitbucket push payload needs 'push.changes' or 'changes'")
            }
        }
        let repositoryURLs = payload.repositoryURLs(forge)
        guard !repositoryURLs.isEmpty else { throw Malformed(description: "the payload names no repository") }
        return ForgePush(repositoryURLs: repositoryURLs, changes: changes)
    }

    /// A `repository` or `project` object: the fields that can hold its URL or name, and Bitbucket's links.
    struct Repository: Decodable {
        static let fieldNames = [
            "clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url", "git_http_url", "git_ssh_url", "web_url",
            "http_url", "homepage", "full_name",
        ]
        /// The string fields among `fieldNames`, by name.
        var fields: [String: String] = [:]
        var htmlLink: String?
        var cloneLinks: [String] = []

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: JSONKey.self)
            for name in Self.fieldNames {
                if let value: String = container.lenient(JSONKey(name)) { fields[name] = value }
            }
            let links = container.object("links")
            htmlLink = (links?.lenient("html") as Link?)?.href
            cloneLinks = (links?.lenient("clone") as [Link]?)?.compactMap(\.href) ?? []
        }
    }

    struct Link: Decodable {
        var href: String?

        init(from decoder: any Decoder) throws {
            href = try decoder.container(keyedBy: JSONKey.self).lenient("href")
        }
    }

    /// `push.changes[]`: `new` is the branch after the push (null when it was deleted; a tag is not deployed).
    struct BitbucketCloudChange: Decodable {
        var change: ForgePush.Change?

        init(from decoder: any Decoder) throws {
            let new = try decoder.container(keyedBy: JSONKey.self).object("new")
            let target = new?.object("target")
            guard let new, new.lenient("type") == "branch", let name: String = new.lenient("name"),
                let hash: String = target?.lenient("hash")
            else { return }
            change = ForgePush.Change(ref: "refs/heads/\(name)", after: hash)
        }
    }

    /// `changes[]`: `ref.id` and `toHash`.
    struct BitbucketServerChange: Decodable {
        var change: ForgePush.Change?

        init(from decoder: any Decoder) throws {
            let fields = try decoder.container(keyedBy: JSONKey.self)
            let ref = fields.object("ref")
            guard let id: String = ref?.lenient("id"), let hash: String = fields.lenient("toHash") else { return }
            change = ForgePush.Change(ref: id, after: hash)
        }
    }
}

/// A JSON object key by name, for decoding a few named fields of a large object.
struct JSONKey: CodingKey, ExpressibleByStringLiteral {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ name: String) { stringValue = name }
    init(stringLiteral name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer {
    /// The field's value when it is there and of type `T`; nil when it is missing, null or of another type.
    /// (Most fields asked for are missing from a given forge's payload; asking `contains` first is much cheaper than
    /// the decoder's error or its generic path.)
    func lenient<T: Decodable>(_ key: Key) -> T? {
        guard contains(key) else { return nil }
        return (try? decodeIfPresent(T.self, forKey: key)) ?? nil
    }

    /// The same for a string, through the decoder's own method for strings rather than its generic one.
    func lenient(_ key: Key) -> String? {
        guard contains(key) else { return nil }
        return (try? decodeIfPresent(String.self, forKey: key)) ?? nil
    }

    /// The object at `key`, when there is one.
    func object(_ key: Key) -> KeyedDecodingContainer<JSONKey>? {
        guard contains(key) else { return nil }
        return try? nestedContainer(keyedBy: JSONKey.self, forKey: key)
    }
}
