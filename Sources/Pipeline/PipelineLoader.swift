import Foundation
import Yams

/// Loads pipeline files and validates them completely, collecting every problem with its `file:line:column`.
public struct PipelineLoader: Sendable {
    /// Where `${NAME}` is looked up: the daemon's environment.
    public var environment: [String: String]

    /// Files larger than this are refused before parsing: a pipeline is a page of YAML, not a data dump.
    public static let maximumFileSize = 1 << 20

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Loads `pipelines/<app>.yml`; the app's name comes from the file's name.
    public func load(file path: String) throws(PipelineErrors) -> Pipeline {
        let url = URL(fileURLWithPath: path)
        let name = url.lastPathComponent
        guard name.hasSuffix(".yml") else {
            let hint = name.hasSuffix(".yaml") ? " (rename \(name) to \(name.dropLast(5)).yml)" : ""
            throw PipelineErrors([error(path, 1, 1, "pipeline files are named <app>.yml" + hint)])
        }
        let data = try read(url, shownAs: path)
        guard let text = String(data: data, encoding: .utf8) else {
            throw PipelineErrors([error(path, 1, 1, "the file is not UTF-8")])
        }
        return try load(
            yaml: text, app: String(name.dropLast(".yml".count)), file: path,
            baseDirectory: url.deletingLastPathComponent().path)
    }

    /// Loads pipeline text. Relative local paths in it (`repository`, `deploy_to`) are taken from `baseDirectory`.
    public func load(
        yaml: String, app: String, file: String, baseDirectory: String? = nil
    ) throws(PipelineErrors)
        -> Pipeline
    {
        var decoder = PipelineDecoder(file: file, environment: environment, baseDirectory: baseDirectory)
        let pipeline = decoder.decode(yaml: yaml, app: app)
        guard decoder.errors.isEmpty, let pipeline else {
            throw PipelineErrors(decoder.errors.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
        }
        return pipeline
    }

    /// The file's bytes, read only when it is a regular file inside its folder (a symbolic link may point within the
    /// folder, not out of it: an error that quotes the file must never publish someone's private file) and never more
    /// than the size limit, whatever the file's size.
    private func read(_ url: URL, shownAs path: String) throws(PipelineErrors) -> Data {
        let folder = url.deletingLastPathComponent().resolvingSymlinksInPath().path
        let target = url.resolvingSymlinksInPath()
        guard target.path.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/") else {
            throw PipelineErrors([
                error(
                    path, 1, 1,
                    "the file is a symbolic link out of the pipelines folder (to \(target.path)); Slipway reads only files inside it"
                )
            ])
        }
        var status = stat()
        guard stat(target.path, &status) == 0 else {
            throw PipelineErrors([error(path, 1, 1, "cannot read the file: \(String(cString: strerror(errno)))")])
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw PipelineErrors([error(path, 1, 1, "the file is not a regular file")])
        }
        guard status.st_size <= Self.maximumFileSize else { throw PipelineErrors([tooLarge(path)]) }
        do {
            let handle = try FileHandle(forReadingFrom: target)
            defer { try? handle.close() }
            // The file may have grown since the stat: one byte past the limit is enough to tell.
            let data = try handle.read(upToCount: Self.maximumFileSize + 1) ?? Data()
            guard data.count <= Self.maximumFileSize else { throw PipelineErrors([tooLarge(path)]) }
            return data
        } catch let error as PipelineErrors {
            throw error
        } catch {
            throw PipelineErrors([self.error(path, 1, 1, "cannot read the file: \(error.localizedDescription)")])
        }
    }

    private func tooLarge(_ path: String) -> PipelineError {
        error(path, 1, 1, "the file is larger than 1 MiB")
    }

    /// The `.yml` files directly inside `directory`, sorted by name.
    public static func pipelineFiles(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".yml") && !$0.hasPrefix(".") }
            .sorted()
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    private func error(_ file: String, _ line: Int, _ column: Int, _ message: String) -> PipelineError {
        PipelineError(file: file, line: line, column: column, message: message)
    }
}

/// The app name rule from the contract: `^[a-z0-9][a-z0-9_-]{0,62}$`.
public func isValidAppName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard (1...63).contains(bytes.count) else { return false }
    func isLowerAlphanumeric(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
    return isLowerAlphanumeric(bytes[0])
        && bytes.dropFirst().allSatisfy {
            isLowerAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
        }
}

/// Walks the YAML node tree by hand rather than through `Decodable`, because every error must carry the position
/// of the node it is about, and because unknown keys are errors here, not something to ignore.
struct PipelineDecoder {
    let file: String
    let environment: [String: String]
    let baseDirectory: String?
    var errors: [PipelineError] = []
    var secrets: [String] = []
    /// What the walk may read in all. YAML aliases let a small file stand for a huge tree (a "billion laughs");
    /// the walk follows aliases, so it stops at about the size of the largest file it would accept.
    var budget = PipelineLoader.maximumFileSize
    var exhausted = false

    init(file: String, environment: [String: String], baseDirectory: String?) {
        self.file = file
        self.environment = environment
        self.baseDirectory = baseDirectory
    }

    static let topLevelKeys = [
        "repository", "branch", "deploy_to", "keep_releases", "poll", "paths", "webhook_secret", "env", "build",
        "test", "migrate", "activate", "health", "rollback", "processes", "cache",
    ]
    static let stepKeys = ["name", "run", "timeout", "env"]
    static let healthKeys = ["http", "command", "timeout", "interval"]
    static let processKeys = ["run", "port", "instances", "stop_timeout"]

    mutating func decode(yaml: String, app: String) -> Pipeline? {
        if !isValidAppName(app) {
            fail(at: nil, "the app name \(shown(app)) (from the file name) must match ^[a-z0-9][a-z0-9_-]{0,62}$")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml, .basic)
        } catch {
            record(yamlError: error, in: yaml)
            return nil
        }
        guard let root else {
            fail(at: nil, "the file is empty; a pipeline needs at least 'repository'")
            return nil
        }
        guard let fields = mapping(root, allowed: Self.topLevelKeys, what: "a pipeline") else { return nil }

        var pipeline = Pipeline(app: app, repository: "", file: file)
        guard let repository = fields["repository"] else {
            fail(at: root, "'repository' is required")
            return nil
        }
        if let value = string(repository, "repository") {
            if let problem = Self.repositoryProblem(value) {
                fail(at: repository, problem)
            }
            pipeline.repository = resolveLocalPath(value)
        }
        if let node = fields["branch"], let branch = string(node, "branch") {
            if BranchName.isValid(branch) {
                pipeline.branch = branch
            } else {
                fail(at: node, "\(shown(branch)) is not a valid branch name")
            }
        }
        if let node = fields["deploy_to"], let path = string(node, "deploy_to") {
            if path.isEmpty {
                fail(at: node, "'deploy_to' must not be empty")
            } else {
                pipeline.deployTo = resolveLocalPath(path)
            }
        }
        if let node = fields["keep_releases"], let count = integer(node, "keep_releases") {
            if count >= 1 {
                pipeline.keepReleases = count
            } else {
                fail(at: node, "'keep_releases' must be at least 1")
            }
        }
        if let node = fields["poll"] {
            pipeline.poll = duration(node, "poll")
        }
        if let node = fields["paths"], let items = sequence(node, "paths") {
            for item in items {
                guard let text = string(item, "a paths entry") else { continue }
                if let glob = PathGlob(text) {
                    pipeline.paths.append(glob)
                } else {
                    fail(at: item, "\(shown(text)) is not a valid glob (an empty pattern or an unclosed '[')")
                }
            }
        }
        if let node = fields["webhook_secret"], let secret = interpolated(node, "webhook_secret") {
            if secret.isEmpty {
                fail(at: node, "'webhook_secret' must not be empty")
            } else {
                pipeline.webhookSecret = secret
                secrets.append(secret)
            }
        }
        if let node = fields["env"] {
            pipeline.environment = environmentVariables(node)
        }
        pipeline.build = steps(fields["build"], phase: "build")
        pipeline.test = steps(fields["test"], phase: "test")
        pipeline.migrate = steps(fields["migrate"], phase: "migrate")
        pipeline.activate = steps(fields["activate"], phase: "activate")
        pipeline.rollback = steps(fields["rollback"], phase: "rollback")
        if let node = fields["processes"] {
            pipeline.processes = processes(node)
        }
        if let node = fields["health"] {
            pipeline.health = healthCheck(node)
            if case .path? = pipeline.health?.probe, !pipeline.processes.contains(where: { $0.port != nil }) {
                fail(
                    at: node,
                    "'http' written as a path is asked of the processes that have a 'port'; add one under "
                        + "'processes', or write a full http:// URL")
            }
        }
        if let node = fields["cache"] {
            pipeline.cache = cacheEntries(node)
        }
        pipeline.secrets = Array(Set(secrets.filter { !$0.isEmpty })).sorted {
            $0.count > $1.count || ($0.count == $1.count && $0 < $1)
        }
        return pipeline
    }

    // MARK: - Shapes

    /// A mapping's entries by key, after reporting unknown keys (with a suggestion) and non-string keys.
    /// Charges `cost` to the budget; false (with one error) once it is spent.
    mutating func spend(_ cost: Int, at node: Node) -> Bool {
        guard !exhausted else { return false }
        budget -= cost + 1
        if budget < 0 {
            exhausted = true
            fail(at: node, "the pipeline is too large once its aliases are expanded (more than 1 MiB)")
            return false
        }
        return true
    }

    mutating func mapping(_ node: Node, allowed: [String], what: String) -> [String: Node]? {
        if case .mapping(let mapping) = node, !spend(mapping.count, at: node) { return nil }
        guard case .mapping(let mapping) = node else {
            fail(at: node, "expected \(what) (a mapping of keys to values), found \(describe(node))")
            return nil
        }
        var fields: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let key) = keyNode else {
                fail(at: keyNode, "keys must be plain words, found \(describe(keyNode))")
                continue
            }
            guard allowed.contains(key.string) else {
                var message = "unknown key \(shown(key.string))"
                if let suggestion = Suggestion.closest(to: key.string, in: allowed) {
                    message += "; did you mean '\(suggestion)'?"
                } else {
                    message += " (allowed: \(allowed.joined(separator: ", ")))"
                }
                fail(at: keyNode, message)
                continue
            }
            fields[key.string] = value
        }
        return fields
    }

    mutating func sequence(_ node: Node, _ what: String) -> [Node]? {
        if isNull(node) { return [] }
        if case .sequence(let sequence) = node, !spend(sequence.count, at: node) { return nil }
        guard case .sequence(let sequence) = node else {
            fail(at: node, "'\(what)' must be a list, found \(describe(node))")
            return nil
        }
        return Array(sequence)
    }

    /// A string scalar. Numbers and booleans are refused: `branch: 2024` is almost always a quoting mistake.
    mutating func string(_ node: Node, _ what: String) -> String? {
        if case .scalar(let scalar) = node, !spend(scalar.string.utf8.count, at: node) { return nil }
        guard case .scalar(let scalar) = node, kind(node) == .str else {
            var message = "'\(what)' must be a string, found \(describe(node))"
            if case .scalar = node, !isNull(node) { message += "; put it in quotes" }
            fail(at: node, message)
            return nil
        }
        return scalar.string
    }

    mutating func integer(_ node: Node, _ what: String) -> Int? {
        guard case .scalar(let scalar) = node, kind(node) == .int, let value = Int(scalar.string) else {
            fail(at: node, "'\(what)' must be a whole number, found \(describe(node))")
            return nil
        }
        return value
    }

    mutating func duration(_ node: Node, _ what: String) -> Duration? {
        guard let text = scalarText(node, what) else { return nil }
        guard let value = DurationText.parse(text) else {
            fail(at: node, "'\(what)' has a bad duration \(shown(text)); write it like 90s, 5m, 1h or 1m30s")
            return nil
        }
        return value
    }

    /// Any scalar as text: for values where `5` and `"5"` mean the same, such as environment values and durations.
    mutating func scalarText(_ node: Node, _ what: String) -> String? {
        if case .scalar(let scalar) = node, !spend(scalar.string.utf8.count, at: node) { return nil }
        guard case .scalar(let scalar) = node, !isNull(node) else {
            fail(at: node, "'\(what)' must be a single value, found \(describe(node))")
            return nil
        }
        return scalar.string
    }

    /// A value with `${NAME}` expanded from the daemon's environment; what was substituted becomes a secret.
    mutating func interpolated(_ node: Node, _ what: String, anyScalar: Bool = false) -> String? {
        guard let text = anyScalar ? scalarText(node, what) : string(node, what) else { return nil }
        do {
            let result = try Interpolation.expand(text, environment: environment)
            if !result.substituted.isEmpty {
                secrets.append(contentsOf: result.substituted)
                secrets.append(result.value)
            }
            return result.value
        } catch {
            switch error {
            case .unset(let name, let offset):
                var message = "${\(name)} is not set in the daemon's environment"
                if name.hasPrefix("SLIPWAY_") {
                    // `${…}` is read once, when the file is loaded; Slipway's own variables exist only in a step.
                    message += "; SLIPWAY_* variables are set only inside steps, so write $\(name) in a step's run"
                }
                fail(at: node, offset: offset, message)
            case .malformed(let offset):
                fail(
                    at: node, offset: offset,
                    "a '${' must be followed by a variable name and '}'; write '$${' for a literal")
            }
            return nil
        }
    }

    mutating func environmentVariables(_ node: Node) -> [EnvironmentVariable] {
        if isNull(node) { return [] }
        if case .mapping(let mapping) = node, !spend(mapping.count, at: node) { return [] }
        guard case .mapping(let mapping) = node else {
            fail(at: node, "'env' must be a mapping of NAME: value, found \(describe(node))")
            return []
        }
        var result: [EnvironmentVariable] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let key) = keyNode else {
                fail(at: keyNode, "environment names must be plain words")
                continue
            }
            let name = key.string
            guard Interpolation.isVariableName(name) else {
                fail(at: keyNode, "\(shown(name)) is not a valid environment variable name")
                continue
            }
            guard !name.hasPrefix("SLIPWAY_") else {
                fail(at: keyNode, "'\(name)': names starting with SLIPWAY_ are set by Slipway itself")
                continue
            }
            if let value = interpolated(valueNode, name, anyScalar: true) {
                result.append(EnvironmentVariable(name, value))
            }
        }
        return result
    }

    mutating func steps(_ node: Node?, phase: String) -> [Step] {
        guard let node, let items = sequence(node, phase) else { return [] }
        var result: [Step] = []
        for item in items {
            if case .scalar = item {
                // Any scalar is a command: `- true` is the shell's `true`, not a YAML boolean.
                if let run = scalarText(item, "a \(phase) step"), nonEmpty(run, at: item, "a \(phase) step") {
                    result.append(Step(run: run))
                }
                continue
            }
            guard
                let fields = mapping(item, allowed: Self.stepKeys, what: "a step (a command, or name/run/timeout/env)")
            else { continue }
            guard let runNode = fields["run"] else {
                fail(at: item, "a \(phase) step needs 'run'")
                continue
            }
            guard let run = scalarText(runNode, "run"), nonEmpty(run, at: runNode, "'run'") else { continue }
            var step = Step(run: run)
            if let nameNode = fields["name"], let name = string(nameNode, "name") {
                step.name = name
            }
            if let timeoutNode = fields["timeout"], let timeout = duration(timeoutNode, "timeout") {
                step.timeout = timeout
            }
            if let envNode = fields["env"] {
                step.environment = environmentVariables(envNode)
            }
            result.append(step)
        }
        return result
    }

    mutating func healthCheck(_ node: Node) -> HealthCheck? {
        guard let fields = mapping(node, allowed: Self.healthKeys, what: "'health'") else { return nil }
        let probe: HealthCheck.Probe
        switch (fields["http"], fields["command"]) {
        case (let http?, nil):
            guard let url = string(http, "http") else { return nil }
            if url.hasPrefix("/") {
                guard !url.hasPrefix("//"), URL(string: "http://127.0.0.1" + url) != nil else {
                    fail(at: http, "'http' written as a path must be a path like /up, found \(shown(url))")
                    return nil
                }
                probe = .path(url)
                break
            }
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil
            else {
                fail(at: http, "'http' must be an http:// or https:// URL, or a path like /up, found \(shown(url))")
                return nil
            }
            probe = .http(url)
        case (nil, let command?):
            guard let run = string(command, "command"), nonEmpty(run, at: command, "'command'") else { return nil }
            probe = .command(run)
        case (.some, .some):
            fail(at: fields["command"], "'health' takes either 'http' or 'command', not both")
            return nil
        case (nil, nil):
            fail(at: node, "'health' needs 'http' or 'command'")
            return nil
        }
        var check = HealthCheck(probe: probe)
        if let timeout = fields["timeout"], let value = duration(timeout, "timeout") { check.timeout = value }
        if let interval = fields["interval"], let value = duration(interval, "interval") { check.interval = value }
        return check
    }

    /// `processes:`, a mapping of names to `run`, `port`, `instances` and `stop_timeout`.
    mutating func processes(_ node: Node) -> [ProcessDefinition] {
        if case .mapping(let mapping) = node, !spend(mapping.count, at: node) { return [] }
        guard case .mapping(let mapping) = node, !mapping.isEmpty else {
            fail(at: node, "'processes' must be a mapping of process names to their 'run', found \(describe(node))")
            return []
        }
        var result: [ProcessDefinition] = []
        var ports: [Int: String] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let key) = keyNode else {
                fail(at: keyNode, "process names must be plain words, found \(describe(keyNode))")
                continue
            }
            let name = key.string
            guard isValidAppName(name) else {
                fail(at: keyNode, "the process name \(shown(name)) must match ^[a-z0-9][a-z0-9_-]{0,62}$")
                continue
            }
            guard var definition = process(name, value) else { continue }
            if let port = definition.port, let other = ports[port] {
                fail(at: value, "'\(name)' and '\(other)' both have port \(port); each public port serves one process")
                definition.port = nil
            }
            if let port = definition.port { ports[port] = name }
            result.append(definition)
        }
        return result
    }

    mutating func process(_ name: String, _ node: Node) -> ProcessDefinition? {
        if case .scalar = node {
            // `web: python3 app.py` is the short form of `web: {run: python3 app.py}`, as in a Procfile.
            guard let run = scalarText(node, name), nonEmpty(run, at: node, "'\(name)'") else { return nil }
            return ProcessDefinition(name: name, run: run)
        }
        guard
            let fields = mapping(
                node, allowed: Self.processKeys, what: "a process (run, port, instances, stop_timeout)")
        else { return nil }
        guard let runNode = fields["run"] else {
            fail(at: node, "the process '\(name)' needs 'run'")
            return nil
        }
        guard let run = scalarText(runNode, "run"), nonEmpty(run, at: runNode, "'run'") else { return nil }
        var definition = ProcessDefinition(name: name, run: run)
        if let portNode = fields["port"], let port = integer(portNode, "port") {
            if (1...65535).contains(port) {
                definition.port = port
            } else {
                fail(at: portNode, "'port' must be from 1 to 65535, found \(port)")
            }
        }
        if let instancesNode = fields["instances"], let instances = integer(instancesNode, "instances") {
            if (1...ProcessDefinition.maximumInstances).contains(instances) {
                definition.instances = instances
            } else {
                fail(at: instancesNode, "'instances' must be from 1 to \(ProcessDefinition.maximumInstances)")
            }
        }
        if let timeoutNode = fields["stop_timeout"], let timeout = duration(timeoutNode, "stop_timeout") {
            definition.stopTimeout = timeout
        }
        return definition
    }

    // MARK: - Helpers

    mutating func nonEmpty(_ text: String, at node: Node, _ what: String) -> Bool {
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            fail(at: node, "\(what) must not be empty")
            return false
        }
        return true
    }

    static func repositoryProblem(_ value: String) -> String? {
        if value.isEmpty { return "'repository' must not be empty" }
        if let range = value.range(of: "://") {
            let scheme = value[..<range.lowerBound].lowercased()
            guard ["file", "https", "http", "ssh", "git"].contains(scheme) else {
                return
                    "'repository' must be a local path or a file://, https://, ssh:// or git:// URL, found '\(scheme)://'"
            }
        }
        return nil
    }

    /// True for a path on this machine written as a path: not a URL (`file://` included) and not scp-like
    /// `host:path`.
    static func isPlainPath(_ value: String) -> Bool {
        if value.contains("://") { return false }
        if let colon = value.firstIndex(of: ":"), !value[..<colon].contains("/") { return false }
        return true
    }

    /// Relative local paths are relative to the pipeline file, as in docker-compose files.
    func resolveLocalPath(_ value: String) -> String {
        guard Self.isPlainPath(value), !value.hasPrefix("/") else { return value }
        if value.hasPrefix("~/"), let home = environment["HOME"] {
            return (home as NSString).appendingPathComponent(String(value.dropFirst(2)))
        }
        guard let baseDirectory else { return value }
        return URL(fileURLWithPath: baseDirectory).appendingPathComponent(value).standardizedFileURL.path
    }

    /// The node's resolved YAML type; quoted scalars are always strings.
    func kind(_ node: Node) -> Tag.Name {
        let name = YAMLSchema.tag(of: node)
        return name == .nonSpecific ? .str : name
    }

    func isNull(_ node: Node) -> Bool {
        if case .scalar = node { return kind(node) == .null }
        return false
    }

    /// A value from the file, quoted for a message: control characters escaped so that a message stays on one
    /// line, and long values cut short.
    func shown(_ value: String) -> String {
        var text = ""
        for scalar in value.unicodeScalars.prefix(80) {
            switch scalar {
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            default: text += scalar.properties.generalCategory == .control ? "?" : String(scalar)
            }
        }
        return "'" + text + (value.unicodeScalars.count > 80 ? "…" : "") + "'"
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch kind(node) {
            case .null: return "nothing"
            case .int: return "the number \(scalar.string)"
            case .float: return "the number \(scalar.string)"
            case .bool: return "the boolean \(scalar.string)"
            default: return shown(scalar.string)
            }
        }
    }

    mutating func fail(at node: Node?, offset: Int = 0, _ message: String) {
        var line = node?.mark?.line ?? 1
        var column = node?.mark?.column ?? 1
        if offset > 0, case .scalar(let scalar)? = node, !scalar.string.contains("\n") {
            // Point at the `${` itself when the value sits on one line as written.
            switch scalar.style {
            case .plain: column += offset
            case .singleQuoted, .doubleQuoted: column += offset + 1
            default: break
            }
        }
        line = max(1, line)
        column = max(1, column)
        errors.append(PipelineError(file: file, line: line, column: column, message: message))
    }

    mutating func record(yamlError error: Error, in yaml: String) {
        switch error {
        case YamlError.scanner(let context, let problem, let mark, _),
            YamlError.parser(let context, let problem, let mark, _),
            YamlError.composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context { message += " (\(context.text) at \(context.mark.line):\(context.mark.column))" }
            errors.append(
                PipelineError(file: file, line: max(1, mark.line), column: max(1, mark.column), message: message))
        case YamlError.duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { shown($0) }.joined(separator: ", ")
            errors.append(
                PipelineError(
                    file: file, line: max(1, context.mark.line), column: max(1, context.mark.column),
                    message: "duplicate key \(names)"))
        case YamlError.reader(let problem, let offset, _, _):
            let (line, column) = Self.position(ofOffset: offset ?? 0, in: yaml)
            errors.append(
                PipelineError(file: file, line: line, column: column, message: "cannot read the YAML: \(problem)"))
        default:
            errors.append(PipelineError(file: file, line: 1, column: 1, message: "cannot parse the YAML: \(error)"))
        }
    }

    static func position(ofOffset offset: Int, in text: String) -> (Int, Int) {
        var line = 1
        var column = 1
        for character in text.prefix(offset) {
            if character == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}
