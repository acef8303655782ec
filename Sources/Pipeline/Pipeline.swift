import Foundation
import SlipwayAPI

/// One app's pipeline, loaded from `pipelines/<app>.yml` and fully validated.
public struct Pipeline: Sendable, Equatable {
    /// The app's name: the file's name without `.yml`.
    public var app: String
    /// A local path, or a `file://`, `https://`, `ssh://` or `git://` URL.
    public var repository: String
    public var branch: String
    /// Where releases go; nil means `<state>/apps/<app>`.
    public var deployTo: String?
    /// How many succeeded releases stay on disk, besides the live one.
    public var keepReleases: Int
    /// How often to check the branch with no notice; nil means never.
    public var poll: Duration?
    /// Deploy only when a changed file matches one of these globs; empty means always.
    public var paths: [PathGlob]
    /// This app's webhook secret, when it has its own.
    public var webhookSecret: String?
    /// Extra environment for every step, in file order.
    public var environment: [EnvironmentVariable]
    public var build: [Step]
    public var test: [Step]
    public var migrate: [Step]
    public var activate: [Step]
    public var health: HealthCheck?
    /// Run in the target release after the switch when rolling back to it.
    public var rollback: [Step]
    /// Folders a build makes that the next build can start from (`cache:`).
    public var cache: [CacheEntry] = []
    /// The app's long-running processes, in file order: Slipway runs them for the live release.
    public var processes: [ProcessDefinition]
    /// Every value that came from `${NAME}`, and the webhook secret: masked in logs and API output.
    public var secrets: [String]
    /// The file this pipeline came from.
    public var file: String

    public init(
        app: String, repository: String, branch: String = "main", deployTo: String? = nil, keepReleases: Int = 5,
        poll: Duration? = nil, paths: [PathGlob] = [], webhookSecret: String? = nil,
        environment: [EnvironmentVariable] = [], build: [Step] = [], test: [Step] = [], migrate: [Step] = [],
        activate: [Step] = [], health: HealthCheck? = nil, rollback: [Step] = [],
        processes: [ProcessDefinition] = [], secrets: [String] = [], file: String = ""
    ) {
        self.app = app
        self.repository = repository
        self.branch = branch
        self.deployTo = deployTo
        self.keepReleases = keepReleases
        self.poll = poll
        self.paths = paths
        self.webhookSecret = webhookSecret
        self.environment = environment
        self.build = build
        self.test = test
        self.migrate = migrate
        self.activate = activate
        self.health = health
        self.rollback = rollback
        self.processes = processes
        self.secrets = secrets
        self.file = file
    }

    /// `repository` as logs and the API show it: a password in the URL reads `***`.
    public var shownRepository: String {
        guard var parsed = URLComponents(string: repository), parsed.password != nil else { return repository }
        parsed.password = "***"
        return parsed.string ?? repository
    }

    /// The steps of `phase`; the health check is not a list of steps, so `.health` has none.
    public func steps(for phase: StepPhase) -> [Step] {
        switch phase {
        case .build: build
        case .test: test
        case .migrate: migrate
        case .activate: activate
        case .rollback: rollback
        case .health: []
        }
    }

    /// True when a change to `changedPaths` should deploy: always when there is no `paths:` filter.
    public func wantsDeploy(forChangedPaths changedPaths: [String]) -> Bool {
        paths.isEmpty || changedPaths.contains { path in paths.contains { $0.matches(path) } }
    }
}

/// One shell command in a phase.
public struct Step: Sendable, Equatable {
    public var name: String
    public var run: String
    public var timeout: Duration
    public var environment: [EnvironmentVariable]

    public static let defaultTimeout = Duration.seconds(30 * 60)

    public init(
        name: String? = nil, run: String, timeout: Duration = defaultTimeout, environment: [EnvironmentVariable] = []
    ) {
        self.name = name ?? Step.defaultName(for: run)
        self.run = run
        self.timeout = timeout
        self.environment = environment
    }

    /// A step written as a bare string is named after its command's first line, shortened.
    static func defaultName(for run: String) -> String {
        let firstLine = run.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? run
        let trimmed = firstLine.trimmingCharacters(in: .whitespaces)
        return trimmed.count > 60 ? String(trimmed.prefix(57)) + "..." : trimmed
    }
}

public struct EnvironmentVariable: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The check that runs after activate: it passes on any 2xx (http) or exit 0 (command).
public struct HealthCheck: Sendable, Equatable {
    public enum Probe: Sendable, Equatable {
        /// A full URL.
        case http(String)
        /// An `http:` written as a path, like `/up`: asked of each new instance of every process with a `port`, on
        /// the instance's own port.
        case path(String)
        case command(String)
    }

    public var probe: Probe
    /// How long to keep trying in total.
    public var timeout: Duration
    /// How long to wait between tries.
    public var interval: Duration

    public init(probe: Probe, timeout: Duration = .seconds(30), interval: Duration = .seconds(1)) {
        self.probe = probe
        self.timeout = timeout
        self.interval = interval
    }
}

/// A long-running process of the app (`processes:`). Slipway starts `instances` of it for the live release, each
/// with a `PORT` of its own, restarts it when it exits, and swaps it for the next release's on every deploy.
public struct ProcessDefinition: Sendable, Equatable {
    /// Its key under `processes:`; it names the log file, so it follows the app-name rule.
    public var name: String
    /// Run as `/bin/sh -c <run>` in the release directory.
    public var run: String
    /// The public port, if any: Slipway listens there and forwards each request to the live generation.
    public var port: Int?
    public var instances: Int
    /// How long it gets between SIGTERM and SIGKILL.
    public var stopTimeout: Duration

    public static let defaultStopTimeout = Duration.seconds(10)
    /// More instances than this is a mistake in the file rather than a plan.
    public static let maximumInstances = 64

    public init(
        name: String, run: String, port: Int? = nil, instances: Int = 1, stopTimeout: Duration = defaultStopTimeout
    ) {
        self.name = name
        self.run = run
        self.port = port
        self.instances = instances
        self.stopTimeout = stopTimeout
    }
}

extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

extension Set where Element == Character {
    static let whitespaces: Set<Character> = [" ", "\t"]
}
