import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// The four forges whose push webhooks Slipway understands.
enum Forge: String, CaseIterable, Sendable {
    case github, gitlab, gitea, bitbucket

    /// The header that names the event, and the value(s) that mean a push.
    var eventHeader: HTTPField.Name {
        switch self {
        case .github: HTTPField.Name("X-GitHub-Event")!
        case .gitlab: HTTPField.Name("X-Gitlab-Event")!
        case .gitea: HTTPField.Name("X-Gitea-Event")!
        case .bitbucket: HTTPField.Name("X-Event-Key")!
        }
    }

    var pushEvents: Set<String> {
        switch self {
        case .github, .gitea: ["push"]
        case .gitlab: ["Push Hook"]
        case .bitbucket: ["repo:push", "repo:refs_changed"]
        }
    }

    /// The headers that carry a delivery's id, for dropping repeats.
    var deliveryHeaders: [HTTPField.Name] {
        switch self {
        case .github: [HTTPField.Name("X-GitHub-Delivery")!]
        case .gitea: [HTTPField.Name("X-Gitea-Delivery")!, HTTPField.Name("X-GitHub-Delivery")!]
        case .gitlab: [HTTPField.Name("X-Gitlab-Event-UUID")!]
        case .bitbucket: [HTTPField.Name("X-Request-Id")!, HTTPField.Name("X-Request-UUID")!]
        }
    }

    /// Checks the delivery's signature over the raw body against `secret`, in constant time.
    func verify(body: [UInt8], headers: HTTPFields, secret: String) -> Bool {
        switch self {
        case .gitlab:
            guard let token = headers[HTTPField.Name("X-Gitlab-Token")!] else { return false }
            return constantTimeEquals(token, secret)
        case .github:
            return Self.verifyHMAC(headers[HTTPField.Name("X-Hub-Signature-256")!], prefix: "sha256=", body: body, secret: secret)
        case .gitea:
            return Self.verifyHMAC(headers[HTTPField.Name("X-Gitea-Signature")!], prefix: "", body: body, secret: secret)
        case .bitbucket:
            return Self.verifyHMAC(headers[HTTPField.Name("X-Hub-Signature")!], prefix: "sha256=", body: body, secret: secret)
        }
    }

    private static func verifyHMAC(_ header: String?, prefix: String, body: [UInt8], secret: String) -> Bool {
        guard let header, header.hasPrefix(prefix), let signature = bytes(hex: String(header.dropFirst(prefix.count))),
            signature.count == SHA256.byteCount
        else { return false }
        // isValidAuthenticationCode compares in constant time.
        return HMAC<SHA256>.isValidAuthenticationCode(
            signature, authenticating: body, using: SymmetricKey(data: Array(secret.utf8)))
    }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(digits.count / 2)
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case 0x30...0x39: digit - 0x30
            case 0x61...0x66: digit - 0x61 + 10
            case 0x41...0x46: digit - 0x41 + 10
            default: nil
            }
        }
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            result.append(high << 4 | low)
            index += 2
        }
        return result
    }
}

/// What Slipway reads from a push delivery: where it happened, and which refs moved to what.
struct ForgePush: Equatable {
    struct Change: Equatable {
        var ref: String
        var after: String
    }

    var repositoryURLs: [String]
    var changes: [Change]
}

/// Reads the few fields Slipway needs from each forge's documented push payload. Anything else in the payload is
/// ignored; a payload without them is malformed.
enum ForgePayload {
    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// The body as a JSON object, or nil when it is not one.
    static func object(_ body: [UInt8]) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
    }

    /// The repository URLs in any delivery (push or not), used to pick which secrets can sign it. A delivery that
    /// is not even JSON names none, and is still checked against the daemon's secret.
    static func repositoryURLs(_ forge: Forge, object: [String: Any]?) -> [String] {
        object.map { urls(forge, $0) } ?? []
    }

    static func push(_ forge: Forge, object: [String: Any]?) throws -> ForgePush {
        guard let object else { throw Malformed(description: "the body is not valid JSON, or not a JSON object") }
        let changes: [ForgePush.Change]
        switch forge {
        case .github, .gitea, .gitlab:
            guard let ref = object["ref"] as? String, let after = object["after"] as? String else {
                throw Malformed(description: "a push payload needs 'ref' and 'after'")
            }
            changes = [ForgePush.Change(ref: ref, after: after)]
        case .bitbucket:
            if let push = object["push"] as? [String: Any], let list = push["changes"] as? [[String: Any]] {
                // Bitbucket Cloud: push.changes[].new is the branch after the push (null when it was deleted).
                changes = list.compactMap { change in
                    guard let new = change["new"] as? [String: Any], new["type"] as? String == "branch",
                        let name = new["name"] as? String, let target = new["target"] as? [String: Any],
                        let hash = target["hash"] as? String
                    else { return nil }
                    return ForgePush.Change(ref: "refs/heads/\(name)", after: hash)
                }
            } else if let list = object["changes"] as? [[String: Any]] {
                // Bitbucket Server and Data Center: changes[].ref.id and toHash.
                changes = list.compactMap { change in
                    guard let ref = change["ref"] as? [String: Any], let id = ref["id"] as? String,
                        let hash = change["toHash"] as? String
                    else { return nil }
                    return ForgePush.Change(ref: id, after: hash)
                }
            } else {
                throw Malformed(description: "a Bitbucket push payload needs 'push.changes' or 'changes'")
            }
        }
        let repositoryURLs = urls(forge, object)
        guard !repositoryURLs.isEmpty else { throw Malformed(description: "the payload names no repository") }
        return ForgePush(repositoryURLs: repositoryURLs, changes: changes)
    }

    private static func urls(_ forge: Forge, _ object: [String: Any]) -> [String] {
        var urls: [String] = []
        func add(_ value: Any?) {
            if let text = value as? String, !text.isEmpty { urls.append(text) }
        }
        let repository = object["repository"] as? [String: Any]
        switch forge {
        case .github, .gitea:
            for key in ["clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url"] { add(repository?[key]) }
        case .gitlab:
            let project = object["project"] as? [String: Any]
            for key in ["git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url", "url"] { add(project?[key]) }
            for key in ["git_http_url", "git_ssh_url", "homepage", "url"] { add(repository?[key]) }
        case .bitbucket:
            let links = repository?["links"] as? [String: Any]
            add((links?["html"] as? [String: Any])?["href"])
            for clone in links?["clone"] as? [[String: Any]] ?? [] { add(clone["href"]) }
            if let fullName = repository?["full_name"] as? String {
                urls += ["https://bitbucket.org/\(fullName)", "git@bitbucket.org:\(fullName)", "ssh://git@bitbucket.org/\(fullName)"]
            }
        }
        return urls
    }
}
