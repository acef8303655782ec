import CLibGit2

/// How to authenticate to a remote. Each field is used only when the server asks for that kind of credential.
public struct Credentials: Sendable, Equatable {
    /// An SSH private key file, with its public key file and passphrase when those are needed.
    public struct SSHKey: Sendable, Equatable {
        public var privateKeyPath: String
        public var publicKeyPath: String?
        public var passphrase: String?

        public init(privateKeyPath: String, publicKeyPath: String? = nil, passphrase: String? = nil) {
            self.privateKeyPath = privateKeyPath
            self.publicKeyPath = publicKeyPath
            self.passphrase = passphrase
        }
    }

    public var sshKey: SSHKey?
    /// Ask a running ssh-agent (`SSH_AUTH_SOCK`) when no key file is given.
    public var useSSHAgent: Bool
    /// A token for HTTPS, sent as the password.
    public var httpsToken: String?
    /// The user name sent with `httpsToken`. Forges accept any non-empty name with a token.
    public var httpsUsername: String

    public init(
        sshKey: SSHKey? = nil, useSSHAgent: Bool = false, httpsToken: String? = nil,
        httpsUsername: String = "x-access-token"
    ) {
        self.sshKey = sshKey
        self.useSSHAgent = useSSHAgent
        self.httpsToken = httpsToken
        self.httpsUsername = httpsUsername
    }

    public static let none = Credentials()
}

/// State shared with libgit2's C callbacks through their `payload` pointer during one remote operation.
final class RemoteCallbackState {
    let credentials: Credentials
    var credentialAttempts = 0
    var updates: [RefUpdate] = []

    init(credentials: Credentials) {
        self.credentials = credentials
    }

    /// Runs `body` with `callbacks` wired to this state. The state must outlive the call, which `body` guarantees.
    func withCallbacks<T>(_ body: (inout git_remote_callbacks) throws(GitError) -> T) throws(GitError) -> T {
        var callbacks = git_remote_callbacks()
        git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION))
        callbacks.credentials = acquireCredential
        callbacks.update_tips = recordTipUpdate
        callbacks.payload = Unmanaged.passUnretained(self).toOpaque()
        return try withExtendedLifetime(self) { () throws(GitError) -> T in try body(&callbacks) }
    }
}

private func acquireCredential(
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
        git_error_set_str(Int32(GIT_ERROR_CALLBACK.rawValue), "authentication failed: the remote rejected the credentials")
        return GIT_EAUTH.rawValue
    }
    let credentials = state.credentials
    let user = usernameFromURL.map { String(cString: $0) } ?? "git"
    if allowedTypes & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 {
        if let key = credentials.sshKey {
            return git_credential_ssh_key_new(out, user, key.publicKeyPath, key.privateKeyPath, key.passphrase)
        }
        if credentials.useSSHAgent {
            return git_credential_ssh_key_from_agent(out, user)
        }
    }
    if allowedTypes & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, let token = credentials.httpsToken {
        return git_credential_userpass_plaintext_new(out, credentials.httpsUsername, token)
    }
    if allowedTypes & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
        return git_credential_username_new(out, user)
    }
    return GIT_PASSTHROUGH.rawValue
}

private func recordTipUpdate(
    _ name: UnsafePointer<CChar>?, _ old: UnsafePointer<git_oid>?, _ new: UnsafePointer<git_oid>?,
    _ payload: UnsafeMutableRawPointer?
) -> Int32 {
    guard let payload, let name else { return 0 }
    let state = Unmanaged<RemoteCallbackState>.fromOpaque(payload).takeUnretainedValue()
    let before = old.map(OID.init).flatMap { $0.isZero ? nil : $0 }
    let after = new.map(OID.init).flatMap { $0.isZero ? nil : $0 }
    state.updates.append(RefUpdate(name: String(lenientCString: name), old: before, new: after))
    return 0
}
