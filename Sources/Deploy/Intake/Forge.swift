import Crypto

/// The four forges whose push webhooks Slipway understands: where each puts its event, its delivery id and its
/// signature, and how the signature is checked. Header names are lower-case, as `ForgeDelivery.headers` holds them.
public enum Forge: String, CaseIterable, Sendable {
    case github, gitlab, gitea, bitbucket

    /// The header that names the event.
    var eventHeader: String {
        switch self {
        case .github: "x-github-event"
        case .gitlab: "x-gitlab-event"
        case .gitea: "x-gitea-event"
        case .bitbucket: "x-event-key"
        }
    }

    /// The event names that mean a push.
    var pushEvents: Set<String> {
        switch self {
        case .github, .gitea: ["push"]
        case .gitlab: ["Push Hook"]
        case .bitbucket: ["repo:push", "repo:refs_changed"]
        }
    }

    /// The headers that carry a delivery's id, for dropping repeats.
    var deliveryHeaders: [String] {
        switch self {
        case .github: ["x-github-delivery"]
        case .gitea: ["x-gitea-delivery", "x-github-delivery"]
        case .gitlab: ["x-gitlab-event-uuid"]
        case .bitbucket: ["x-request-id", "x-request-uuid"]
        }
    }

    /// Checks the delivery's signature over the raw body against `secret`, in constant time.
    func verify(_ delivery: ForgeDelivery, secret: String) -> Bool {
        let headers = delivery.headers
        switch self {
        case .gitlab:
            guard let token = headers["x-gitlab-token"] else { return false }
            return constantTimeEquals(token, secret)
        case .github:
            return Self.verifyHMAC(
                headers["x-hub-signature-256"], prefix: "sha256=", body: delivery.body, secret: secret)
        case .gitea:
            return Self.verifyHMAC(headers["x-gitea-signature"], prefix: "", body: delivery.body, secret: secret)
        case .bitbucket:
            return Self.verifyHMAC(headers["x-hub-signature"], prefix: "sha256=", body: delivery.body, secret: secret)
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

/// Compares two secrets in time that depends only on their lengths' digests, not on where they first differ.
public func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let left = SHA256.hash(data: Array(a.utf8))
    let right = SHA256.hash(data: Array(b.utf8))
    return zip(left, right).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
}
