import CLibGit2

/// How to authenticate to a remote, and to which remotes. Each field is used only when the server asks for that kind
/// of credential, and only for the hosts it is meant for.
public struct Credentials: Sendable, Equatable {
    /// An SSH private key file, with its public key file and passphrase when those are needed.
    ///
    /// Any key OpenSSH reads works: RSA (signed with rsa-sha2-256/512), ed25519 and ECDSA, in PEM or OpenSSH format.
    /// The passphrase reaches `ssh` through a private askpass program and its environment, never its arguments.
    public struct SSHKey: Sendable, Equatable {
        public var privateKeyPath: String
        /// Not needed by OpenSSH, which derives the public key from the private one; kept for callers that set it.
        public var publicKeyPath: String?
        public var passphrase: String?

        public init(privateKeyPath: String, publicKeyPath: String? = nil, passphrase: String? = nil) {
            self.privateKeyPath = privateKeyPath
            self.publicKeyPath = publicKeyPath
            self.passphrase = passphrase
        }
    }

    /// Offered to SSH servers (alone: `IdentitiesOnly`) instead of the keys `~/.ssh/config` or ssh's defaults name.
    public var sshKey: SSHKey?
    /// Let `ssh` ask a running ssh-agent (`SSH_AUTH_SOCK`). When false, the agent's socket is hidden from `ssh`
    /// (an `IdentityAgent` in the ssh configuration still applies).
    public var useSSHAgent: Bool
    /// A token for HTTPS, sent as the password.
    public var httpsToken: String?
    /// The user name sent with `httpsToken`. Forges accept any non-empty name with a token.
    public var httpsUsername: String
    /// The hosts `httpsToken` may be sent to (`github.com`, or `host:port` to name one port); case does not matter.
    /// Empty means every host: a caller that knows its repositories should list their hosts, so that a redirect or
    /// a mistyped URL never carries the token elsewhere.
    public var httpsTokenHosts: [String]
    /// The hosts `sshKey` is offered to, in the same form; empty means every host.
    public var sshKeyHosts: [String]
    /// Send `httpsToken` over plain `http://` too. Off by default: there anyone on the path can read it.
    public var allowInsecureHTTP: Bool
    /// known_hosts files to check SSH host keys against, instead of `~/.ssh/known_hosts` (hashed or plain, any key
    /// type). Empty means ssh's defaults. The system's `/etc/ssh/ssh_known_hosts` is read in either case. Checking is
    /// always strict: an unknown or changed host key is refused.
    public var knownHostsFiles: [String]
    /// An ssh configuration file to read instead of `~/.ssh/config` (ssh's `-F`); nil means ssh's default. Port,
    /// User, HostName, IdentityFile and ProxyJump come from there, as they do for `git`.
    public var sshConfigFile: String?

    public init(
        sshKey: SSHKey? = nil, useSSHAgent: Bool = false, httpsToken: String? = nil,
        httpsUsername: String = "x-access-token", httpsTokenHosts: [String] = [], sshKeyHosts: [String] = [],
        allowInsecureHTTP: Bool = false, knownHostsFiles: [String] = [], sshConfigFile: String? = nil
    ) {
        self.sshKey = sshKey
        self.useSSHAgent = useSSHAgent
        self.httpsToken = httpsToken
        self.httpsUsername = httpsUsername
        self.httpsTokenHosts = httpsTokenHosts
        self.sshKeyHosts = sshKeyHosts
        self.allowInsecureHTTP = allowInsecureHTTP
        self.knownHostsFiles = knownHostsFiles
        self.sshConfigFile = sshConfigFile
    }

    public static let none = Credentials()

    /// These credentials for the remote `url` alone: a token or key with no hosts of its own goes only to `url`'s
    /// host, so that a redirect or another app's repository never receives it. Hosts set explicitly stay as they are.
    public func scoped(to url: String) -> Credentials {
        guard let host = Self.host(of: url) else { return self }
        var scoped = self
        if scoped.httpsTokenHosts.isEmpty { scoped.httpsTokenHosts = [host] }
        if scoped.sshKeyHosts.isEmpty { scoped.sshKeyHosts = [host] }
        return scoped
    }

    /// The host a remote URL names: the authority of `scheme://…`, or `host` of scp-like `user@host:path`; nil for a
    /// path on this machine.
    static func host(of url: String) -> String? {
        if let parts = URLParts(url) { return parts.scheme == "file" ? nil : parts.host }
        guard case .network = RemoteLocation(url), let colon = url.firstIndex(of: ":") else { return nil }
        let authority = url[..<colon]
        return String(authority.lastIndex(of: "@").map { authority[authority.index(after: $0)...] } ?? authority)
    }

    /// The HTTPS token for a request to `url`, or nil when the token is not meant for it.
    func httpsToken(for url: String) -> String? {
        guard let token = httpsToken, let parts = URLParts(url) else { return nil }
        switch parts.scheme {
        case "https": break
        case "http": guard allowInsecureHTTP else { return nil }
        default: return nil
        }
        return Self.allows(httpsTokenHosts, host: parts.host, port: parts.port) ? token : nil
    }

    /// The SSH key to offer to `host`, or nil when the key is not meant for it.
    func sshKey(forHost host: String, port: String?) -> SSHKey? {
        guard let sshKey, Self.allows(sshKeyHosts, host: host, port: port) else { return nil }
        return sshKey
    }

    private static func allows(_ hosts: [String], host: String, port: String?) -> Bool {
        if hosts.isEmpty { return true }
        let host = host.lowercased()
        return hosts.contains { entry in
            let entry = entry.lowercased()
            return entry == host || (port.map { entry == "\(host):\($0)" } ?? false)
        }
    }
}

/// The scheme, host and port of a URL, enough to decide where a credential may go.
struct URLParts: Equatable {
    let scheme: String
    let user: String?
    let host: String
    let port: String?
    /// Everything from the first `/` after the authority on, percent escapes left as they are.
    let path: String

    init?(_ url: String) {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        scheme = url[..<schemeEnd.lowerBound].lowercased()
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        path = String(rest[authorityEnd...])
        if let at = authority.lastIndex(of: "@") {
            user = String(authority[..<at])
            authority = authority[authority.index(after: at)...]
        } else {
            user = nil
        }
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            port = after.hasPrefix(":") ? String(after.dropFirst()) : nil
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            port = String(authority[authority.index(after: colon)...])
        } else {
            host = String(authority)
            port = nil
        }
        guard !host.isEmpty else { return nil }
    }
}

func acquireCredential(
    _ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>?,
    _ url: UnsafePointer<CChar>?,
    _ usernameFromURL: UnsafePointer<CChar>?,
    _ allowedTypes: UInt32,
    _ payload: UnsafeMutableRawPointer?
) -> Int32 {
    guard let payload else { return GIT_PASSTHROUGH.rawValue }
    let state = Unmanaged<RemoteCallbackState>.fromOpaque(payload).takeUnretainedValue()
    // libgit2 asks again after every rejection; without a bound a wrong key loops for ever.
    state.credentialAttempts += 1
    if state.credentialAttempts > 3 {
        git_error_set_str(
            Int32(GIT_ERROR_CALLBACK.rawValue), "authentication failed: the remote rejected the credentials")
        return GIT_EAUTH.rawValue
    }
    let credentials = state.credentials
    let target = String(lenientCString: url)
    let user = usernameFromURL.map { String(cString: $0) } ?? "git"
    // SSH is GitKit's own transport, which runs ssh and never asks here; this covers HTTP(S).
    if allowedTypes & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, let token = credentials.httpsToken(for: target) {
        return git_credential_userpass_plaintext_new(out, credentials.httpsUsername, token)
    }
    if allowedTypes & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
        return git_credential_username_new(out, user)
    }
    if allowedTypes & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, credentials.httpsToken != nil {
        let reason =
            target.lowercased().hasPrefix("http://") && !credentials.allowInsecureHTTP
            ? "it is not sent over plain http:// (allowInsecureHTTP is off)"
            : "its allowed hosts (httpsTokenHosts) do not include this one"
        state.fail(
            GitError(
                code: .auth, errorClass: .init(rawValue: Int32(GIT_ERROR_HTTP.rawValue)),
                message: "\(target) asks for credentials, and the HTTPS token is not sent there: \(reason)",
                function: "git_remote_connect"))
        return GIT_EAUTH.rawValue
    }
    return GIT_PASSTHROUGH.rawValue
}
