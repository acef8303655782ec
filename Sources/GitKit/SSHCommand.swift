import CLibGit2
import Foundation

/// Where an `ssh://` or scp-like (`user@host:path`) URL points.
struct SSHRemote: Equatable {
    let user: String?
    let host: String
    let port: String?
    /// The repository path as the remote shell should see it: absolute, or relative to the home directory.
    let path: String

    init(_ url: String) throws(GitError) {
        if let parts = URLParts(url), ["ssh", "ssh+git", "git+ssh"].contains(parts.scheme) {
            user = parts.user.map(Self.percentDecoded)
            host = parts.host
            port = parts.port.flatMap { $0.isEmpty ? nil : $0 }
            var path = Self.percentDecoded(parts.path)
            // `ssh://host/~/repo` and `ssh://host/~user/repo` name paths under a home directory, as in git.
            if path.hasPrefix("/~") { path.removeFirst() }
            self.path = path
        } else if let colon = Self.scpColon(url) {
            let authority = url[..<colon]
            if let at = authority.lastIndex(of: "@") {
                user = String(authority[..<at])
                host = String(authority[authority.index(after: at)...]).trimmingCharacters(in: ["[", "]"])
            } else {
                user = nil
                host = String(authority).trimmingCharacters(in: ["[", "]"])
            }
            port = nil
            path = String(url[url.index(after: colon)...])
        } else {
            throw GitError(code: .invalid, message: "'\(url)' is not an SSH URL", function: "ssh")
        }
        // A host or user that starts with '-' would be read by ssh as an option (CVE-2017-1000117).
        guard !host.isEmpty, !host.hasPrefix("-"), !(user?.hasPrefix("-") ?? false), !path.isEmpty else {
            throw GitError(code: .invalid, message: "'\(url)' is not a usable SSH URL", function: "ssh")
        }
        guard port.map({ $0.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } }) ?? true else {
            throw GitError(code: .invalid, message: "'\(url)' has a port that is not a number", function: "ssh")
        }
    }

    /// The colon of `host:path`, where the part before it has no slash (`[::1]:path` is allowed).
    private static func scpColon(_ url: String) -> String.Index? {
        var inBrackets = false
        for index in url.indices {
            switch url[index] {
            case "[": inBrackets = true
            case "]": inBrackets = false
            case "/": return nil
            case ":" where !inBrackets: return index
            default: continue
            }
        }
        return nil
    }

    private static func percentDecoded(_ text: String) -> String {
        text.contains("%") ? (text.removingPercentEncoding ?? text) : text
    }

    /// What ssh runs on the server: `git-upload-pack '/path'`, quoted the way git quotes it.
    func remoteCommand(service: String) -> String {
        var quoted = "'"
        for character in path {
            switch character {
            case "'": quoted += "'\\''"
            case "!": quoted += "'\\!'"
            default: quoted.append(character)
            }
        }
        return "\(service) \(quoted)'"
    }
}

/// The `ssh` command line for one connection, and its environment.
struct SSHCommand {
    var arguments: [String]
    /// Variables to set for ssh, on top of the daemon's environment.
    var environment: [String: String]
    /// Variables to remove from the daemon's environment.
    var removedEnvironment: [String]
    /// The key offered, if GitKit chose one (for error messages).
    var keyPath: String?

    /// `askpass` is the program that prints the key's passphrase, when there is one.
    init(remote: SSHRemote, service: String, credentials: Credentials, timeouts: NetworkTimeouts, askpass: String?) {
        var arguments = [
            "ssh",
            // No prompt can ever be answered; a passphrase comes from SSH_ASKPASS, which BatchMode would refuse.
            "-o", askpass == nil ? "BatchMode=yes" : "BatchMode=no",
            // Given first on the command line, so nothing in a configuration file can weaken them.
            "-o", "StrictHostKeyChecking=yes",
            "-o", "PasswordAuthentication=no",
            "-o", "KbdInteractiveAuthentication=no",
            "-o", "ConnectTimeout=\(timeouts.connectSeconds)",
        ]
        if let configFile = credentials.sshConfigFile {
            arguments += ["-F", configFile]
        }
        if !credentials.knownHostsFiles.isEmpty {
            let quoted = credentials.knownHostsFiles.map { "\"\($0)\"" }.joined(separator: " ")
            arguments += ["-o", "UserKnownHostsFile=\(quoted)"]
        }
        let key = credentials.sshKey(forHost: remote.host, port: remote.port)
        if let key {
            arguments += ["-i", key.privateKeyPath, "-o", "IdentitiesOnly=yes"]
            if askpass != nil { arguments += ["-o", "NumberOfPasswordPrompts=1"] }
        }
        if let port = remote.port { arguments += ["-p", port] }
        if let user = remote.user { arguments += ["-l", user] }
        arguments += [remote.host, remote.remoteCommand(service: service)]
        self.arguments = arguments
        keyPath = key?.privateKeyPath

        var environment: [String: String] = [:]
        if let askpass, let passphrase = key?.passphrase {
            environment["SSH_ASKPASS"] = askpass
            environment["SSH_ASKPASS_REQUIRE"] = "force"
            environment[SSHCommand.passphraseVariable] = passphrase
        }
        self.environment = environment
        removedEnvironment = credentials.useSSHAgent ? [] : ["SSH_AUTH_SOCK"]
        if askpass == nil { removedEnvironment += ["SSH_ASKPASS", "SSH_ASKPASS_REQUIRE"] }
    }

    /// The variable the askpass program prints.
    static let passphraseVariable = "SLIPWAY_SSH_PASSPHRASE"

    /// The askpass program: it prints the passphrase from its environment, so the passphrase is in no file and in
    /// no command line.
    static let askpassScript = "#!/bin/sh\nprintf '%s\\n' \"$\(passphraseVariable)\"\n"
}

/// What ssh's complaints on stderr mean, in words a deploy log can show.
enum SSHDiagnosis {
    static func error(stderr: String, status: Int32?, remote: SSHRemote, keyPath: String?) -> GitError {
        let target = remote.port.map { "\(remote.host) port \($0)" } ?? remote.host
        let lines = stderr.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        let detail = lines.filter { !$0.isEmpty && !$0.hasPrefix("@") }.suffix(3).joined(separator: " / ")
        func make(_ code: GitError.Code, _ klass: Int32, _ message: String) -> GitError {
            GitError(
                code: code, errorClass: .init(rawValue: klass),
                message: message + (detail.isEmpty ? "" : " (ssh: \(detail))"), function: "ssh")
        }
        let ssh = Int32(GIT_ERROR_SSH.rawValue)
        let net = Int32(GIT_ERROR_NET.rawValue)
        if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            return make(
                .certificate, ssh,
                "the SSH host key of \(target) has changed (REMOTE HOST IDENTIFICATION HAS CHANGED): it does not match "
                    + "known_hosts, so the connection was refused")
        }
        if stderr.contains("Host key verification failed") || stderr.contains("host key is known for")
            || stderr.contains("No matching host key")
        {
            return make(
                .certificate, ssh,
                "the SSH host key of \(target) is unknown: it is not in known_hosts, and unknown hosts are refused")
        }
        if stderr.contains("incorrect passphrase") || stderr.contains("bad passphrase") {
            return make(.auth, ssh, "the passphrase of the SSH key \(keyPath ?? "") is wrong")
        }
        if let keyPath, stderr.contains("not accessible") || stderr.contains("no such identity") {
            return make(.auth, ssh, "no SSH key: the key file \(keyPath) cannot be read")
        }
        if stderr.contains("Permission denied") {
            if keyPath == nil && !stderr.contains("Offering") {
                return make(
                    .auth, ssh,
                    "\(target) refused the SSH login (Permission denied (publickey)): no key was accepted; give a key "
                        + "(Credentials.sshKey), an agent, or an IdentityFile in the ssh configuration")
            }
            return make(
                .auth, ssh,
                "\(target) refused the SSH key\(keyPath.map { " \($0)" } ?? "") (Permission denied (publickey))")
        }
        if stderr.contains("Connection refused") {
            return make(.generic, net, "the connection to \(target) was refused")
        }
        if stderr.contains("timed out") || stderr.contains("Connection timed out") {
            return make(.timeout, net, "timed out connecting to \(target)")
        }
        if stderr.contains("Could not resolve hostname") {
            return make(.generic, net, "cannot resolve the host name \(remote.host)")
        }
        if stderr.contains("does not appear to be a git repository") || stderr.contains("not a git repository")
            || stderr.contains("No such file or directory")
        {
            return make(.notFound, ssh, "\(target) has no repository at \(remote.path)")
        }
        let how = status.map { "ssh exited with status \($0)" } ?? "ssh ended the connection"
        return make(.generic, ssh, "\(how) before \(target) answered")
    }
}
