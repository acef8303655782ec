import Foundation

/// The pipeline file `slipway init` writes: every key, with its default, in a file that validates as written.
///
/// Keys with a default that a file may as well state (`branch`, `keep_releases`) are set to it; the optional ones
/// are commented out, with their default in words and an example to start from. Every commented example is valid
/// once uncommented.
public enum PipelineTemplate {
    /// A placeholder for `repository` when none is given: a path, so that the file validates until it is edited.
    public static func defaultRepository(app: String) -> String { "/srv/git/\(app).git" }

    /// The file for `app`, following `repository` (as the file should say it: see `repositoryValue`).
    public static func text(app: String, repository: String) -> String {
        """
        # The pipeline of the app "\(app)": how Slipway deploys it. The file's name, without .yml, is the app's name.
        # Every key is here. Those set below hold their defaults; the commented ones are optional and show an example.
        # The reference is docs/pipeline.md in Slipway's repository. Check this file with: slipway validate FILE

        # Required. Where the code comes from: a path on this machine, or a file://, https://, ssh:// or git:// URL.
        # A relative path is taken from this file's folder.
        repository: \(yamlScalar(repository))

        # The branch to deploy. Default: main.
        branch: main

        # Where releases go: releases/<id>/, the current symlink, and shared/ (kept across releases).
        # Default: <state>/apps/\(app), under the daemon's --state folder.
        # deploy_to: /srv/\(app)

        # How many succeeded releases stay on disk to roll back to, at least 1; the live one always stays. Default: 5.
        keep_releases: 5

        # How often to look for new commits when no push or webhook says so (like 90s, 5m, 1h, 1m30s). Default: never.
        # poll: 1m

        # Deploy only when a changed file matches one of these globs (** crosses folders). Default: every change.
        # paths: ["src/**", "requirements.txt"]

        # This app's own secret for forge webhooks. Default: the daemon's --webhook-secret.
        # webhook_secret: ${\(environmentName(app))_WEBHOOK_SECRET}

        # More environment for every step. ${NAME} is read from the daemon's environment when this file is loaded,
        # and what it reads is a secret, shown as *** in logs. Default: nothing beyond PATH, HOME, LANG and SLIPWAY_*.
        # env:
        #   APP_ENV: production
        #   DATABASE_URL: ${\(environmentName(app))_DATABASE_URL}

        # The steps, each run as /bin/sh -c in the new release's folder: build, test and migrate before the switch
        # (a failure there leaves current as it was), activate after it (a failure there, or in the health check,
        # switches back to the previous release). A step is a command, or a mapping of name, run, timeout (default
        # 30m) and env. Default for each phase: no steps.
        # build:
        #   - make build
        # test:
        #   - name: unit tests
        #     run: make test
        #     timeout: 10m
        # migrate:
        #   - ./bin/migrate
        # activate:
        #   - name: restart
        #     run: sudo systemctl restart \(app)

        # The app's long-running processes, which Slipway runs for the live release instead of a restart step:
        # each deploy and rollback starts the new release's beside the old ones (each instance with a PORT of its
        # own), checks them, moves the public port to them and stops the old ones (SIGTERM, then SIGKILL after
        # stop_timeout). Default: none.
        # processes:
        #   web:
        #     run: exec ./bin/server --port $PORT
        #     port: 8000          # the public port, forwarded to the live release's instances
        #     instances: 1        # default 1
        #     stop_timeout: 10s   # default 10s

        # Checked after activate: http passes on any 2xx answer, command on exit 0; tried every interval until
        # timeout. Default: no check.
        # health:
        #   http: http://127.0.0.1:8000/up
        #   # or, instead of http: command: ./bin/healthy
        #   timeout: 30s   # default 30s
        #   interval: 1s   # default 1s

        # Run in the release that `slipway rollback` makes live again, after the switch and before its activate
        # steps (not when a pruned release is built again, nor in the automatic rollback after a failed deploy).
        # Default: no steps.
        # rollback:
        #   - ./bin/migrate --to-release "$SLIPWAY_COMMIT"

        # Folders carried into each new release before its build, from the newest kept release whose key files are
        # the same (a copy-on-write clone or a copy, so the older release never changes). Default: nothing.
        # cache:
        #   - path: .venv
        #     key: [requirements.txt]

        """
    }

    /// `repository` as the file should hold it: a relative path on this machine is made absolute from `directory`
    /// (where `slipway init` ran), since in the file it would be read from the pipelines folder instead.
    public static func repositoryValue(_ given: String, from directory: String) -> String {
        guard PipelineDecoder.isPlainPath(given), !given.hasPrefix("/"), !given.hasPrefix("~/") else { return given }
        return URL(fileURLWithPath: directory).appendingPathComponent(given).standardizedFileURL.path
    }

    /// `HELLO_WORLD` for `hello-world`: the app's name as environment variables spell names.
    static func environmentName(_ app: String) -> String {
        String(app.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// A value as a YAML scalar: plain when that reads back as the same string, single-quoted otherwise.
    static func yamlScalar(_ value: String) -> String {
        let startsPlainly = value.first.map { $0.isLetter || $0.isNumber || "/.~_".contains($0) } ?? false
        let plain =
            startsPlainly && YAMLSchema.tag(ofPlain: value) == .str && !value.contains(": ") && !value.contains(" #")
            && !value.hasSuffix(" ") && !value.hasSuffix(":")
            && value.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F && $0 != "'" && $0 != "\"" }
        return plain ? value : "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
