import CLibGit2
import Foundation
import Synchronization

/// libgit2's process-wide state. It is initialised once, on first use, and never shut down: shutting it down while
/// another thread still holds a handle would be a use-after-free, and a daemon has no moment when it knows it is safe.
public enum LibGit2 {
    /// The version of the libgit2 library that was loaded at run time.
    public static var version: (major: Int, minor: Int, revision: Int) {
        var major: Int32 = 0
        var minor: Int32 = 0
        var revision: Int32 = 0
        git_libgit2_version(&major, &minor, &revision)
        return (Int(major), Int(minor), Int(revision))
    }

    /// The oldest libgit2 GitKit is written against.
    public static let minimumVersion = (major: 1, minor: 5)

    /// Checks that the libgit2 loaded at run time is one GitKit can use. Call it once at start-up.
    public static func checkVersion() throws(GitError) {
        ensureInitialized()
        let loaded = version
        if (loaded.major, loaded.minor) < (minimumVersion.major, minimumVersion.minor) {
            throw GitError(
                code: .invalid,
                message: "libgit2 \(loaded.major).\(loaded.minor).\(loaded.revision) is too old; "
                    + "GitKit needs \(minimumVersion.major).\(minimumVersion.minor) or newer",
                function: "git_libgit2_version")
        }
    }

    private static let initialisation: Void = {
        git_libgit2_init()
        // libgit2 re-hashes every object it reads when this is on. git itself does not: objects are verified once,
        // when a fetch indexes them. Re-hashing roughly doubles the cost of an export.
        _ = slipway_git_set_strict_hash_verification(0)
        // Time limits for http://, https:// and git://, and SSH through the system's OpenSSH. Registration fails only
        // when out of memory, and then libgit2's own stream and SSH still work.
        _ = TimedSocketStream.register()
        _ = SSHTransport.register()
    }()

    /// Set once `setCertificateLocations` was called: the environment then no longer decides.
    private static let certificatesChosen = Atomic<Bool>(false)

    /// Loads `SSL_CERT_FILE` / `SSL_CERT_DIR` once, before the first connection rather than at start-up: parsing a
    /// directory of certificates costs tens of milliseconds, which a process that only exports should not pay.
    static func prepareCertificates() {
        _ = environmentCertificates
    }

    private static let environmentCertificates: Void = {
        if !certificatesChosen.load(ordering: .sequentiallyConsistent) { loadDefaultCertificates() }
    }()

    /// Tells libgit2's TLS (mbedTLS in Debian's build, which reads no environment variables) where the trusted CA
    /// certificates are, as OpenSSL and curl would find them: `SSL_CERT_FILE` and `SSL_CERT_DIR` when set. Otherwise
    /// libgit2 loads the bundle it was built to trust (Debian's: /etc/ssl/certs/ca-certificates.crt) by itself, and
    /// only where that file is missing is another system bundle named here; loading one twice would cost start-up
    /// time for nothing.
    private static func loadDefaultCertificates() {
        let environment = ProcessInfo.processInfo.environment
        let file = environment["SSL_CERT_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        let directory = environment["SSL_CERT_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        if file != nil || directory != nil {
            if slipway_git_set_ssl_cert_locations(file, directory) < 0 { git_error_clear() }
            return
        }
        guard access("/etc/ssl/certs/ca-certificates.crt", R_OK) != 0 else { return }
        if let bundle = systemCertificateBundle {
            if slipway_git_set_ssl_cert_locations(bundle, nil) < 0 { git_error_clear() }
        } else if access("/etc/ssl/certs", R_OK) == 0 {
            if slipway_git_set_ssl_cert_locations(nil, "/etc/ssl/certs") < 0 { git_error_clear() }
        }
    }

    /// The system's CA bundle, where there is one: pass it with a directory of your own to
    /// `setCertificateLocations` to trust both.
    public static var systemCertificateBundle: String? {
        ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"]
            .first { access($0, R_OK) == 0 }
    }

    /// Makes HTTPS trust exactly the CA certificates in `file` (a PEM bundle) and `directory` (one PEM file per
    /// certificate), for every later connection in this process. Certificates are always verified; this only says
    /// against what. By default GitKit trusts `SSL_CERT_FILE` / `SSL_CERT_DIR` if set (read before the first
    /// connection), else the system bundle; after this call the environment is no longer read.
    public static func setCertificateLocations(file: String? = nil, directory: String? = nil) throws(GitError) {
        ensureInitialized()
        guard file != nil || directory != nil else {
            throw GitError(
                code: .invalid, message: "give a CA file, a CA directory or both", function: "setCertificateLocations")
        }
        certificatesChosen.store(true, ordering: .sequentiallyConsistent)
        try check(
            slipway_git_set_ssl_cert_locations(file, directory), "git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS)")
    }

    /// Runs `git_libgit2_init()` the first time it is called; later calls cost a load.
    static func ensureInitialized() {
        _ = initialisation
    }
}
