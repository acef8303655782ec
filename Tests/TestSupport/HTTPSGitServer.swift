import Foundation

/// A real HTTPS git server on loopback: nginx with a certificate from a private CA made with openssl, basic auth,
/// and git-http-backend behind fcgiwrap, serving the bare repositories under `repositories`.
public final class HTTPSGitServer: @unchecked Sendable {
    // @unchecked: every property is set once in init; the processes are only signalled in deinit.
    public let port: Int
    public let directory: String
    /// The private CA's certificate (PEM), which no system bundle trusts.
    public let caFile: String
    /// A directory holding only the CA certificate under its OpenSSL hash name, as `SSL_CERT_DIR` expects.
    public let caDirectory: String
    /// Where the served bare repositories live: `https://localhost:port/<name>` serves `repositories/<name>`.
    public let repositories: String
    public let username = "deploy"
    public let password = "t0ken-for-tests"
    private let nginx: SpawnedProcess
    private let fcgiwrap: SpawnedProcess

    public static let backend = "/usr/lib/git-core/git-http-backend"

    /// True when nginx, fcgiwrap, openssl and git-http-backend are installed.
    public static var isAvailable: Bool {
        Loopback.hasProgram("/usr/sbin/nginx") && Loopback.hasProgram("/usr/sbin/fcgiwrap")
            && Loopback.hasProgram("openssl") && Loopback.hasProgram(backend)
    }

    public init(in directory: String) throws {
        self.directory = directory
        repositories = "\(directory)/repos"
        caFile = "\(directory)/ca.pem"
        caDirectory = "\(directory)/ca-dir"
        let manager = FileManager.default
        for sub in ["repos", "ca-dir", "tmp", "logs"] {
            try manager.createDirectory(atPath: "\(directory)/\(sub)", withIntermediateDirectories: true)
        }
        let openssl = "/usr/bin/openssl"
        try SSHServer.run(
            openssl,
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/ca.key", "-out", caFile,
                "-days", "2", "-subj", "/CN=Slipway Test CA",
            ])
        try SSHServer.run(
            openssl,
            [
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/server.key", "-out",
                "\(directory)/server.csr", "-subj", "/CN=localhost",
            ])
        try writeFile("\(directory)/server.ext", "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n")
        try SSHServer.run(
            openssl,
            [
                "x509", "-req", "-in", "\(directory)/server.csr", "-CA", caFile, "-CAkey", "\(directory)/ca.key",
                "-CAcreateserial", "-out", "\(directory)/server.pem", "-days", "2", "-extfile",
                "\(directory)/server.ext",
            ])
        let hash = try SSHServer.run(openssl, ["x509", "-hash", "-noout", "-in", caFile])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try manager.copyItem(atPath: caFile, toPath: "\(caDirectory)/\(hash).0")
        let digest = try SSHServer.run(openssl, ["passwd", "-apr1", password]).trimmingCharacters(
            in: .whitespacesAndNewlines)
        try writeFile("\(directory)/htpasswd", "\(username):\(digest)\n")

        let socketPath = "\(directory)/fcgi.sock"
        fcgiwrap = try SpawnedProcess(
            "/usr/sbin/fcgiwrap", ["-c", "2", "-s", "unix:\(socketPath)"], log: "\(directory)/logs/fcgiwrap.log")
        for _ in 0..<250 where !manager.fileExists(atPath: socketPath) { usleep(20_000) }

        var started: (Int, SpawnedProcess)?
        for _ in 0..<5 where started == nil {
            let port = try Loopback.freePort()
            let config = """
                daemon off;
                master_process off;
                worker_processes 1;
                error_log \(directory)/logs/error.log;
                pid \(directory)/nginx.pid;
                events { worker_connections 64; }
                http {
                    access_log \(directory)/logs/access.log;
                    client_body_temp_path \(directory)/tmp/body;
                    fastcgi_temp_path \(directory)/tmp/fastcgi;
                    proxy_temp_path \(directory)/tmp/proxy;
                    uwsgi_temp_path \(directory)/tmp/uwsgi;
                    scgi_temp_path \(directory)/tmp/scgi;
                    server {
                        listen 127.0.0.1:\(port) ssl;
                        server_name localhost;
                        ssl_certificate \(directory)/server.pem;
                        ssl_certificate_key \(directory)/server.key;
                        client_max_body_size 0;
                        location / {
                            auth_basic "git";
                            auth_basic_user_file \(directory)/htpasswd;
                            include /etc/nginx/fastcgi_params;
                            fastcgi_param SCRIPT_FILENAME \(Self.backend);
                            fastcgi_param GIT_PROJECT_ROOT \(repositories);
                            fastcgi_param GIT_HTTP_EXPORT_ALL "";
                            fastcgi_param PATH_INFO $uri;
                            fastcgi_param REMOTE_USER $remote_user;
                            fastcgi_pass unix:\(socketPath);
                        }
                    }
                }

                """
            try writeFile("\(directory)/nginx.conf", config)
            let process = try SpawnedProcess(
                "/usr/sbin/nginx",
                ["-e", "\(directory)/logs/error.log", "-p", directory, "-c", "\(directory)/nginx.conf"],
                log: "\(directory)/logs/nginx.out")
            if Loopback.waitForListener(port: port, while: { process.isRunning }) {
                started = (port, process)
            } else {
                process.stop()
            }
        }
        guard let started else {
            fcgiwrap.stop()
            let log = (try? String(contentsOfFile: "\(directory)/logs/error.log", encoding: .utf8)) ?? ""
            throw LoopbackError("nginx did not start: \(log)")
        }
        (port, nginx) = started
    }

    deinit {
        nginx.stop()
        fcgiwrap.stop()
    }

    /// `https://localhost:port/<name>`, with `user:password@` when `withPassword`.
    public func url(_ name: String) -> String { "https://localhost:\(port)/\(name)" }
}
