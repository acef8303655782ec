import Foundation
import GitKit
import TestSupport
import Testing

/// Time limits, cancellation, HTTPS certificates and where credentials may go, against real servers on loopback.
@Suite(.serialized) struct NetworkTests {
    static let short = NetworkTimeouts(connect: .seconds(2), idle: .seconds(1))

    /// The schemes libgit2 connects itself, against a server that accepts the connection and never says a word.
    static let silentSchemes = ["http", "https", "git"]

    @Test(arguments: silentSchemes)
    func aSilentRemoteTimesOut(scheme: String) throws {
        try checkSilentRemoteTimesOut(scheme: scheme)
    }

    @Test(.enabled(if: Loopback.hasProgram("ssh"), "needs ssh (openssh-client)"))
    func aSilentSSHRemoteTimesOut() throws {
        try checkSilentRemoteTimesOut(scheme: "ssh")
    }

    @Test(arguments: silentSchemes)
    func aFetchCanBeCancelledFromAnotherThread(scheme: String) throws {
        try checkCancellation(scheme: scheme)
    }

    @Test(.enabled(if: Loopback.hasProgram("ssh"), "needs ssh (openssh-client)"))
    func anSSHFetchCanBeCancelledFromAnotherThread() throws {
        try checkCancellation(scheme: "ssh")
    }

    private func checkSilentRemoteTimesOut(scheme: String) throws {
        let server = try LoopbackTCPServer()
        let host = scheme == "https" ? "localhost" : "127.0.0.1"
        let url = "\(scheme)://\(host):\(server.port)/repo.git"
        let scratch = ScratchDirectory()
        let credentials = Credentials(knownHostsFiles: ["/dev/null"], sshConfigFile: "/dev/null")

        let listError = #expect(throws: GitError.self) {
            try Repository.listRemoteHeads(url: url, credentials: credentials, timeouts: Self.short)
        }
        #expect(listError?.code == .timeout, "\(listError.map(String.init(describing:)) ?? "")")
        #expect(listError?.message.contains("timed out") == true)

        let mirror = try Repository.createMirror(at: scratch("mirror.git"), of: url)
        let fetchError = #expect(throws: GitError.self) {
            try mirror.fetch(options: FetchOptions(credentials: credentials, timeouts: Self.short))
        }
        #expect(fetchError?.code == .timeout, "\(fetchError.map(String.init(describing:)) ?? "")")
    }

    private func checkCancellation(scheme: String) throws {
        let server = try LoopbackTCPServer()
        let host = scheme == "https" ? "localhost" : "127.0.0.1"
        let scratch = ScratchDirectory()
        let mirror = try Repository.createMirror(at: scratch("mirror.git"), of: "\(scheme)://\(host):\(server.port)/r")
        let cancellation = FetchCancellation()
        let canceller = Thread {
            usleep(300_000)
            cancellation.cancel()
        }
        canceller.start()
        let options = FetchOptions(
            credentials: Credentials(knownHostsFiles: ["/dev/null"], sshConfigFile: "/dev/null"),
            timeouts: NetworkTimeouts(connect: .seconds(60), idle: .seconds(60)), cancellation: cancellation)
        let error = #expect(throws: GitError.self) { try mirror.fetch(options: options) }
        #expect(error?.code == .cancelled, "\(error.map(String.init(describing:)) ?? "")")
        #expect(cancellation.isCancelled)
    }

    @Test func anUnreachablePortFailsFast() throws {
        let port = try Loopback.freePort()
        let error = #expect(throws: GitError.self) {
            try Repository.listRemoteHeads(url: "http://127.0.0.1:\(port)/r.git", timeouts: Self.short)
        }
        #expect(error?.code != .timeout)
        #expect(error?.message.contains("refused") == true, "\(error?.message ?? "")")
    }

    @Test func theHTTPSTokenGoesOnlyToItsHostsAndNeverOverPlainHTTP() throws {
        let challenge =
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\n"
            + "Connection: close\r\n\r\n"
        let url: (LoopbackTCPServer) -> String = { "http://127.0.0.1:\($0.port)/repo.git" }
        func authorizations(_ server: LoopbackTCPServer) -> [String] {
            server.requests.flatMap { $0.split(separator: "\r\n") }
                .filter { $0.lowercased().hasPrefix("authorization:") }.map(String.init)
        }

        // A token meant for another host is never sent, even with plain HTTP allowed.
        let elsewhere = try LoopbackTCPServer(reply: challenge)
        let forge = Credentials(
            httpsToken: "secret-token", httpsTokenHosts: ["git.example.com"], allowInsecureHTTP: true)
        let error = #expect(throws: GitError.self) {
            try Repository.listRemoteHeads(url: url(elsewhere), credentials: forge, timeouts: Self.short)
        }
        #expect(error?.code == .auth, "\(error.map(String.init(describing:)) ?? "")")
        #expect(error?.message.contains("httpsTokenHosts") == true, "\(error?.message ?? "")")
        #expect(!elsewhere.requests.isEmpty)
        #expect(authorizations(elsewhere).isEmpty, "\(elsewhere.requests)")

        // A token for this very host is not sent over plain http:// unless that is allowed.
        let plain = try LoopbackTCPServer(reply: challenge)
        let here = Credentials(httpsToken: "secret-token", httpsTokenHosts: ["127.0.0.1"])
        let plainError = #expect(throws: GitError.self) {
            try Repository.listRemoteHeads(url: url(plain), credentials: here, timeouts: Self.short)
        }
        #expect(plainError?.message.contains("http://") == true, "\(plainError?.message ?? "")")
        #expect(authorizations(plain).isEmpty, "\(plain.requests)")

        // Allowed explicitly, it is sent (and refused by this server, which refuses everything).
        let allowed = try LoopbackTCPServer(reply: challenge)
        var insecure = here
        insecure.allowInsecureHTTP = true
        #expect(throws: GitError.self) {
            try Repository.listRemoteHeads(url: url(allowed), credentials: insecure, timeouts: Self.short)
        }
        let sent = authorizations(allowed)
        #expect(!sent.isEmpty)
        let expected = "Basic " + Data("x-access-token:secret-token".utf8).base64EncodedString()
        #expect(sent.allSatisfy { $0.hasSuffix(expected) }, "\(sent)")
    }

    @Test(.enabled(if: HTTPSGitServer.isAvailable, "needs nginx, fcgiwrap, openssl and git-http-backend"))
    func fetchesOverHTTPSWithAPrivateCAAndBasicAuth() throws {
        let scratch = ScratchDirectory("slipway-https")
        let server = try HTTPSGitServer(in: scratch("server"))
        let work = try WorkingRepository(at: scratch("work"))
        let first = try work.commit("first", files: ["a": "1"])
        try GitCLI.run(["clone", "-q", "--bare", work.path, server.repositories + "/app.git"])
        let credentials = Credentials(
            httpsToken: server.password, httpsUsername: server.username, httpsTokenHosts: ["localhost"])
        defer { try? LibGit2.setCertificateLocations(file: LibGit2.systemCertificateBundle, directory: nil) }

        // The system's bundle does not know the private CA: the certificate is refused.
        if let bundle = LibGit2.systemCertificateBundle {
            try LibGit2.setCertificateLocations(file: bundle)
            let error = #expect(throws: GitError.self) {
                try Repository.listRemoteHeads(url: server.url("app.git"), credentials: credentials)
            }
            #expect(error?.code == .certificate, "\(error.map(String.init(describing:)) ?? "")")
        }

        // Trusting the CA's file, the fetch works, with the token sent as basic auth.
        try LibGit2.setCertificateLocations(file: server.caFile)
        let mirror = try Repository.createMirror(at: scratch("mirror.git"), of: server.url("app.git"))
        try mirror.fetch(options: FetchOptions(credentials: credentials))
        #expect(try mirror.resolve("main").hex == first)

        // A directory of hashed certificates works as well, with the system bundle beside it.
        try LibGit2.setCertificateLocations(file: LibGit2.systemCertificateBundle, directory: server.caDirectory)
        let second = try work.commit("second", files: ["a": "2"])
        try work.git("push", "-q", server.repositories + "/app.git", "main")
        try mirror.fetch(options: FetchOptions(credentials: credentials))
        #expect(try mirror.resolve("main").hex == second)

        // Without the token, basic auth refuses us.
        let anonymous = #expect(throws: GitError.self) {
            try Repository.listRemoteHeads(url: server.url("app.git"), credentials: .none)
        }
        #expect(anonymous != nil)
        // A wrong token is refused too, and the bounded retries end it.
        var wrong = credentials
        wrong.httpsToken = "wrong"
        let wrongError = #expect(throws: GitError.self) {
            try Repository.listRemoteHeads(url: server.url("app.git"), credentials: wrong)
        }
        #expect(wrongError?.code == .auth, "\(wrongError.map(String.init(describing:)) ?? "")")
    }

    /// Credentials with no hosts of their own go only to the host of the repository being fetched.
    @Test func credentialsScopedToARepositoryGoOnlyToItsHost() {
        let all = Credentials(
            sshKey: .init(privateKeyPath: "/k"), httpsToken: "t", httpsTokenHosts: [], sshKeyHosts: [])
        #expect(all.scoped(to: "https://github.com/o/r.git").httpsTokenHosts == ["github.com"])
        #expect(all.scoped(to: "ssh://git@gitlab.example.com:2222/o/r.git").sshKeyHosts == ["gitlab.example.com"])
        #expect(all.scoped(to: "git@bitbucket.org:o/r.git").sshKeyHosts == ["bitbucket.org"])
        #expect(all.scoped(to: "/srv/git/r.git") == all, "a path on this machine has no host")
        let explicit = Credentials(httpsToken: "t", httpsTokenHosts: ["git.example.com"])
        #expect(explicit.scoped(to: "https://github.com/o/r").httpsTokenHosts == ["git.example.com"])
    }
}
