import Foundation
import Logging
import Pipeline
import SlipwayAPI

/// Runs the apps' processes (`processes:`) on this machine: starts a release's processes as a new generation beside
/// the live one, makes it live (the public ports' forwarders send new connections to it) and stops the old one,
/// restarts an instance that exits with a doubling delay, and finds them all again after a restart of the daemon.
///
/// The processes do not depend on the daemon: each runs in a session of its own, so that stopping or killing the
/// daemon leaves the app serving. What the next daemon needs to find them again is in `<state>/processes/<app>.json`
/// (see `ProcessStateFiles`), written after every change.
actor ProcessSupervisor {
    /// Why processes could not be started or made live: it becomes the deployment's error.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A generation started and not yet live.
    struct Started: Sendable {
        let generation: Int64
        /// The own ports of its instances of the processes that have a public port: readiness and a health check
        /// written as a path ask these.
        let servingPorts: [Int]
        /// The live generation already ran the release (an automatic rollback to it): nothing was started.
        var alreadyLive = false
    }

    /// The live generation, when it runs `release`: the release a failed deployment goes back to is still served
    /// by the processes that never stopped.
    func live(app: String, release: Int64) -> Started? {
        guard let live = apps[app]?.live, live.release == release else { return nil }
        return Started(
            generation: live.id, servingPorts: servingInstances(app: app, generation: live.id).map(\.port),
            alreadyLive: true)
    }

    private let stateDirectory: String
    private let files: ProcessStateFiles
    private let policy: SupervisionPolicy
    /// How to start a forwarder: the `slipway` executable and the `forward` subcommand. Without it (a daemon inside
    /// a test runner) a public port is not served.
    private let forwarderCommand: [String]?
    private let logger: Logger
    /// Where a change of an instance's status goes out, as `event: process`.
    private let events: EventBus?
    private var apps: [String: AppProcesses] = [:]
    /// A task per instance, by instance id: the wait for its exit, or for its next start after one.
    private var watchers: [Int64: Task<Void, Never>] = [:]
    /// A task per forwarder, by `app/process`, that starts it again if it exits.
    private var forwarderWatchers: [String: Task<Void, Never>] = [:]
    /// Rotates the processes' logs now and then (see `ProcessLog`), from `adopt()` on.
    private var rotation: Task<Void, Never>?
    /// A number that moves on whenever what `processes(app:)` shows may have changed, for the apps list's cache.
    nonisolated let changes = Locked<UInt64>(0)

    init(
        stateDirectory: String, policy: SupervisionPolicy = .standard, forwarderCommand: [String]? = nil,
        events: EventBus? = nil, logger: Logger = Logger(label: "slipway")
    ) {
        self.events = events
        self.stateDirectory = stateDirectory
        self.files = ProcessStateFiles(stateDirectory: stateDirectory)
        self.policy = policy
        self.forwarderCommand = forwarderCommand
        self.logger = logger
    }

    // MARK: - Start-up

    /// Finds the processes a previous daemon left running and supervises them without starting them again. An
    /// instance of the live generation that is gone is started again; a generation that was being checked or
    /// stopped when that daemon ended is stopped, since the deployment that started it is over.
    func adopt() {
        rotation = rotation ?? Task { await self.rotateLogsNowAndThen() }
        for app in files.apps() {
            guard let state = files.read(app: app) else { continue }
            apps[app] = state
            for generation in state.generations {
                if generation.role != .live {
                    Task { await self.stop(app: app, generation: generation.id) }
                    continue
                }
                for instance in generation.instances {
                    if let identity = instance.identity, identity.isRunning {
                        watch(app: app, instance: instance.id, identity: identity)
                    } else if instance.status != .crashed, instance.status != .stopped {
                        update(app: app, instance: instance.id) {
                            $0.identity = nil
                            $0.status = .starting
                        }
                        scheduleStart(app: app, instance: instance.id, after: .zero)
                    }
                }
            }
            for forwarder in state.forwarders {
                if forwarder.identity.isRunning {
                    watchForwarder(app: app, forwarder)
                } else {
                    Task { try? await self.restartForwarder(app: app, process: forwarder.process) }
                }
            }
        }
    }

    /// Stops watching, as the daemon stops: nothing is started again from now on, and every process keeps running
    /// for the next daemon to find.
    func letGo() {
        rotation?.cancel()
        for watcher in watchers.values { watcher.cancel() }
        for watcher in forwarderWatchers.values { watcher.cancel() }
        watchers.removeAll()
        forwarderWatchers.removeAll()
    }

    // MARK: - What a deployment asks

    /// Starts `processes` of `release` as a new generation, beside the live one; it serves nothing yet.
    func start(
        app: String, release: Int64, processes: [ProcessDefinition], directory: String, environment: [String: String]
    ) throws(Failure) -> Started {
        var state = apps[app] ?? files.read(app: app) ?? AppProcesses(app: app)
        let id = state.nextGeneration
        state.nextGeneration += 1
        let specs = processes.map { process in
            ProcessSpec(
                name: process.name, run: process.run, directory: directory, environment: environment,
                publicPort: process.port, instances: process.instances, stopTimeoutMs: process.stopTimeout.milliseconds)
        }
        var generation = GenerationRecord(id: id, release: release, role: .starting, processes: specs, instances: [])
        for spec in specs {
            for index in 1...spec.instances {
                let port: Int
                do { port = try freePort() } catch { throw Failure(description: "no free port for \(spec.name)") }
                generation.instances.append(
                    InstanceRecord(
                        id: state.nextInstance, process: spec.name, index: index, port: port, status: .starting))
                state.nextInstance += 1
            }
        }
        state.generations.append(generation)
        apps[app] = state
        for instance in generation.instances {
            do {
                try launch(app: app, instance: instance.id)
            } catch {
                Task { await self.stop(app: app, generation: id) }
                throw error
            }
        }
        save(app)
        let serving = Set(specs.filter { $0.publicPort != nil }.map(\.name))
        return Started(
            generation: id, servingPorts: generation.instances.filter { serving.contains($0.process) }.map(\.port))
    }

    /// Waits until every instance of the generation that serves a public port accepts connections on its own
    /// port. It fails at once when an instance of the generation exits, and after `timeout`.
    func waitUntilReady(
        app: String, generation id: Int64, timeout: Duration, cancellation: Cancellation
    )
        async throws(Failure)
    {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var waiting = servingInstances(app: app, generation: id).map(\.port)
        while true {
            guard let generation = apps[app]?.generations.first(where: { $0.id == id }) else {
                throw Failure(description: "the new processes were stopped")
            }
            if let exited = generation.instances.first(where: { $0.identity == nil || $0.restarts > 0 }) {
                throw Failure(description: "\(exited.label) exited before it was ready; see its log")
            }
            let ports = waiting
            waiting = await Blocking.run { ports.filter { !acceptsConnections(port: $0) } }
            if waiting.isEmpty { return }
            if cancellation.isCancelled { throw Failure(description: "cancelled while the new processes started") }
            if clock.now >= deadline {
                let list = waiting.map(String.init).joined(separator: ", ")
                throw Failure(
                    description: "the new processes did not listen on their ports (\(list)) within "
                        + DurationText.format(timeout))
            }
            await cancellation.sleep(for: .milliseconds(100))
        }
    }

    /// Makes the generation live: its forwarders send every new connection to it, then the generation that was
    /// live gets SIGTERM, `stop_timeout` to finish what it has, and SIGKILL. Returns once the old one is gone.
    /// With `carryOver`, the old generation's processes that the new one does not run stay live in it (a restart of
    /// one process); otherwise they are stopped too (a deploy).
    func promote(app: String, generation id: Int64, carryOver: Bool = false) async throws(Failure) {
        guard var state = apps[app], let index = state.generations.firstIndex(where: { $0.id == id }) else {
            throw Failure(description: "the new processes were stopped")
        }
        try await moveForwarders(app: app, to: state.generations[index])
        state = apps[app] ?? state
        guard let newIndex = state.generations.firstIndex(where: { $0.id == id }) else {
            throw Failure(description: "the new processes were stopped")
        }
        let old = state.generations.indices.filter { state.generations[$0].role == .live }
        if carryOver, let oldIndex = old.first {
            let replaced = Set(state.generations[newIndex].processes.map(\.name))
            let kept = state.generations[oldIndex].processes.filter { !replaced.contains($0.name) }
            state.generations[newIndex].processes += kept
            state.generations[newIndex].instances +=
                state.generations[oldIndex].instances.filter { !replaced.contains($0.process) }
            state.generations[oldIndex].instances.removeAll { !replaced.contains($0.process) }
            state.generations[oldIndex].processes.removeAll { !replaced.contains($0.name) }
        }
        for oldIndex in old { state.generations[oldIndex].role = .stopping }
        state.generations[newIndex].role = .live
        for instance in state.generations[newIndex].instances.indices
        where state.generations[newIndex].instances[instance].status == .starting
            && state.generations[newIndex].instances[instance].identity != nil
        {
            state.generations[newIndex].instances[instance].status = .running
        }
        let stopping = old.map { state.generations[$0].id }
        apps[app] = state
        save(app)
        for instance in state.generations[newIndex].instances { announce(app: app, instance: instance.id) }
        for generation in stopping { await stop(app: app, generation: generation) }
        await stopStaleForwarders(app: app)
    }

    /// Stops a generation that did not become live (its health check failed, or the deployment was cancelled).
    func discard(app: String, generation id: Int64) async {
        await stop(app: app, generation: id)
    }

    /// Stops every process of an app whose pipeline no longer names any, and its forwarders.
    func retire(app: String) async {
        guard let state = apps[app] ?? files.read(app: app) else { return }
        apps[app] = state
        for generation in state.generations { await stop(app: app, generation: generation.id) }
        await stopStaleForwarders(app: app)
        if apps[app]?.generations.isEmpty ?? true, apps[app]?.forwarders.isEmpty ?? true {
            apps[app] = nil
            files.remove(app: app)
        }
    }

    /// `slipway restart APP [PROCESS]`: the live generation's processes (or one of them) started again as a new
    /// generation, made live once they listen, then the old ones stopped; a crashed process starts over.
    func restart(app: String, process: String?, cancellation: Cancellation = Cancellation()) async throws(Failure) {
        guard let live = (apps[app] ?? files.read(app: app))?.live else {
            throw Failure(description: "\(app) has no running processes")
        }
        let specs = live.processes.filter { process == nil || $0.name == process }
        guard let first = specs.first else {
            throw Failure(description: "\(app) has no process '\(process ?? "")'")
        }
        let definitions = specs.map {
            ProcessDefinition(
                name: $0.name, run: $0.run, port: $0.publicPort, instances: $0.instances, stopTimeout: $0.stopTimeout)
        }
        let started = try start(
            app: app, release: live.release, processes: definitions, directory: first.directory,
            environment: first.environment)
        do {
            try await waitUntilReady(
                app: app, generation: started.generation, timeout: .seconds(60), cancellation: cancellation)
            try await promote(app: app, generation: started.generation, carryOver: process != nil)
        } catch {
            await discard(app: app, generation: started.generation)
            throw error
        }
    }

    // MARK: - What there is to see

    /// The instances of the app's live generation, and of one being started or stopped, in that order.
    func processes(app: String) -> [API.Process] {
        guard let state = apps[app] else { return [] }
        let order: [GenerationRecord.Role] = [.live, .starting, .stopping]
        return state.generations.sorted { order.firstIndex(of: $0.role)! < order.firstIndex(of: $1.role)! }
            .flatMap { generation in
                generation.instances.map { instance in
                    API.Process(
                        name: instance.process, instance: instance.index, pid: instance.identity?.pid,
                        port: instance.port, status: generation.role == .stopping ? .stopped : instance.status,
                        release: generation.release, startedAt: instance.identity == nil ? nil : instance.startedAt,
                        restarts: instance.restarts)
                }
            }
    }

    /// The names of the app's live processes.
    func processNames(app: String) -> [String] {
        apps[app]?.live?.processes.map(\.name) ?? []
    }

    // MARK: - Instances

    /// Starts instance `id` now and watches it.
    private func launch(app: String, instance id: Int64) throws(Failure) {
        guard let (instance, spec) = find(app: app, instance: id) else { return }
        let log = ProcessLog(stateDirectory: stateDirectory, app: app, process: instance.process)
        log.rotateIfNeeded()
        let output: Int32
        do { output = try log.openForWriting() } catch { throw Failure(description: error.description) }
        defer { close(output) }
        var environment = spec.environment
        environment["PORT"] = String(instance.port)
        environment["SLIPWAY_PROCESS"] = instance.process
        environment["SLIPWAY_INSTANCE"] = String(instance.index)
        let pid: pid_t
        do {
            pid = try ProcessLauncher.spawn(
                .init(
                    executable: "/bin/sh", arguments: ["-c", spec.run], environment: environment,
                    directory: spec.directory, output: output, extra: nil))
        } catch {
            log.note("\(instance.label) could not start: \(error.description)")
            throw Failure(description: "\(instance.label) could not start: \(error.description)")
        }
        // One that has already exited is a zombie with no identity: the wait below reaps it at once.
        let identity = ProcessIdentity.of(pid) ?? ProcessIdentity(pid: pid, startTime: 0, bootID: "")
        log.note("\(instance.label) started (pid \(pid), PORT=\(instance.port))")
        update(app: app, instance: id) {
            $0.identity = identity
            $0.startedAt = Date()
        }
        watch(app: app, instance: id, identity: identity)
    }

    private func watch(app: String, instance id: Int64, identity: ProcessIdentity) {
        watchers[id] = Task {
            guard let ending = await ProcessExit.wait(for: identity) else { return }
            self.exited(app: app, instance: id, ending: ending)
        }
    }

    /// An instance ended: it is started again after the policy's delay unless its generation is being stopped, or
    /// it has crashed.
    private func exited(app: String, instance id: Int64, ending: ProcessExit.Ending) {
        watchers[id] = nil
        guard let (instance, _) = find(app: app, instance: id), let role = role(app: app, instance: id) else { return }
        let log = ProcessLog(stateDirectory: stateDirectory, app: app, process: instance.process)
        let pid = instance.identity.map { " (pid \($0.pid))" } ?? ""
        if role == .stopping || instance.status == .stopped {
            update(app: app, instance: id) { $0.identity = nil }
            save(app)
            return
        }
        var changed = instance
        changed.identity = nil
        let decision = policy.afterExit(of: &changed, at: Date())
        switch decision {
        case .crashed:
            changed.status = .crashed
            log.note(
                "\(instance.label)\(pid) \(ending.text); crashed: it exited \(policy.restartsInWindow + 1) times "
                    + "within \(DurationText.format(policy.window)), so it stays down until the next deploy or restart")
            logger.about(app: app).warning("process \(instance.label) crashed")
        case .restart(let delay):
            changed.status = .starting
            log.note("\(instance.label)\(pid) \(ending.text); starting it again in \(DurationText.format(delay))")
            scheduleStart(app: app, instance: id, after: delay)
        }
        update(app: app, instance: id) { $0 = changed }
        save(app)
        announce(app: app, instance: id)
    }

    private func scheduleStart(app: String, instance id: Int64, after delay: Duration) {
        watchers[id] = Task {
            guard (try? await Task.sleep(for: delay)) != nil else { return }
            self.startAgain(app: app, instance: id)
        }
    }

    /// The start after an exit, unless the instance was stopped meanwhile.
    private func startAgain(app: String, instance id: Int64) {
        watchers[id] = nil
        guard let (instance, _) = find(app: app, instance: id), instance.status == .starting,
            instance.identity == nil, let role = role(app: app, instance: id), role != .stopping
        else { return }
        update(app: app, instance: id) {
            $0.restarts += 1
            $0.recentRestarts.append(Date())
        }
        do {
            try launch(app: app, instance: id)
            if role == .live { update(app: app, instance: id) { $0.status = .running } }
        } catch {
            exited(app: app, instance: id, ending: .exited(127))
        }
        save(app)
        announce(app: app, instance: id)
    }

    /// Stops every instance of a generation (SIGTERM to its process group, SIGKILL after `stop_timeout`) and
    /// forgets it.
    private func stop(app: String, generation id: Int64) async {
        guard var state = apps[app], let index = state.generations.firstIndex(where: { $0.id == id }) else { return }
        state.generations[index].role = .stopping
        apps[app] = state
        save(app)
        let generation = state.generations[index]
        var running: [(ProcessIdentity, Duration)] = []
        for instance in generation.instances {
            guard let identity = instance.identity, identity.isRunning else {
                // One waiting to start again is simply not started.
                watchers[instance.id]?.cancel()
                watchers[instance.id] = nil
                continue
            }
            let grace = generation.processes.first { $0.name == instance.process }?.stopTimeout ?? .seconds(10)
            ProcessLog(stateDirectory: stateDirectory, app: app, process: instance.process)
                .note("\(instance.label) (pid \(identity.pid)) stopping: its generation was replaced")
            running.append((identity, grace))
        }
        await withTaskGroup(of: Void.self) { group in
            for (identity, grace) in running {
                group.addTask { await ProcessGroup(identity.pid).terminate(grace: grace) }
            }
        }
        apps[app]?.generations.removeAll { $0.id == id }
        save(app)
    }

    // MARK: - Forwarders

    /// Makes each public port of `generation` send new connections to it: the forwarder's list of backends is
    /// replaced (one rename), and a forwarder is started for a port that has none yet.
    private func moveForwarders(app: String, to generation: GenerationRecord) async throws(Failure) {
        for spec in generation.processes {
            guard let port = spec.publicPort else { continue }
            let backends = generation.instances.filter { $0.process == spec.name }.map { "127.0.0.1:\($0.port)" }
            let path = backendsPath(app: app, process: spec.name)
            do {
                try writeAtomically(backends.joined(separator: "\n") + "\n", to: path)
            } catch {
                throw Failure(description: "cannot write \(path): \(error.localizedDescription)")
            }
            let existing = apps[app]?.forwarders.first { $0.process == spec.name && $0.port == port }
            if let existing, existing.identity.isRunning { continue }
            try await startForwarder(app: app, process: spec.name, port: port, backends: path)
        }
    }

    private func startForwarder(app: String, process: String, port: Int, backends: String) async throws(Failure) {
        guard let command = forwarderCommand, let executable = command.first else {
            logger.about(app: app).warning("this daemon cannot serve public ports (no forwarder command)")
            return
        }
        let host = "127.0.0.1"
        let log = ProcessLog(stateDirectory: stateDirectory, app: app, process: process)
        let output: Int32
        do { output = try log.openForWriting() } catch { throw Failure(description: error.description) }
        defer { close(output) }
        var ready: [Int32] = [0, 0]
        guard pipe(&ready) == 0 else { throw Failure(description: "cannot make a pipe for the forwarder") }
        defer { close(ready[0]) }
        let pid: pid_t
        do {
            pid = try ProcessLauncher.spawn(
                .init(
                    executable: executable,
                    arguments: Array(command.dropFirst()) + [
                        "--listen", "\(host):\(port)", "--backends", backends, "--notify-ready",
                    ],
                    environment: ["PATH": "/usr/bin:/bin"], directory: "/", output: output, extra: ready[1]))
        } catch {
            close(ready[1])
            throw Failure(description: "cannot start the forwarder of port \(port): \(error.description)")
        }
        close(ready[1])
        let reader = ready[0]
        let answer = await Blocking.run { readLine(from: reader, timeout: 10) }
        guard answer == "ready", let identity = ProcessIdentity.of(pid) else {
            ProcessGroup(pid).send(SIGKILL)
            await Blocking.run {
                var status: Int32 = 0
                _ = waitpid(pid, &status, 0)
            }
            throw Failure(description: "cannot listen on port \(port); see the log of \(process)")
        }
        log.note("forwarder of port \(port) started (pid \(pid))")
        let record = ForwarderRecord(process: process, port: port, host: host, identity: identity, backends: backends)
        apps[app]?.forwarders.removeAll { $0.process == process && $0.port == port }
        apps[app]?.forwarders.append(record)
        save(app)
        watchForwarder(app: app, record)
    }

    /// A forwarder that exits is started again after a second, as long as its port is still wanted.
    private func watchForwarder(app: String, _ forwarder: ForwarderRecord) {
        let key = "\(app)/\(forwarder.process)"
        forwarderWatchers[key] = Task {
            guard await ProcessExit.wait(for: forwarder.identity) != nil else { return }
            guard (try? await Task.sleep(for: .seconds(1))) != nil else { return }
            try? await self.restartForwarder(app: app, process: forwarder.process)
        }
    }

    private func restartForwarder(app: String, process: String) async throws(Failure) {
        guard let forwarder = apps[app]?.forwarders.first(where: { $0.process == process }),
            !forwarder.identity.isRunning,
            apps[app]?.live?.processes.contains(where: { $0.name == process && $0.publicPort == forwarder.port })
                == true
        else { return }
        try await startForwarder(app: app, process: process, port: forwarder.port, backends: forwarder.backends)
    }

    /// Stops the forwarders of ports the live generation no longer has.
    private func stopStaleForwarders(app: String) async {
        let wanted = Set(
            (apps[app]?.live?.processes ?? []).compactMap { spec in spec.publicPort.map { "\(spec.name):\($0)" } })
        for forwarder in apps[app]?.forwarders ?? [] where !wanted.contains("\(forwarder.process):\(forwarder.port)") {
            forwarderWatchers["\(app)/\(forwarder.process)"]?.cancel()
            if forwarder.identity.isRunning { await ProcessGroup(forwarder.identity.pid).terminate(grace: .seconds(5)) }
            apps[app]?.forwarders.removeAll { $0 == forwarder }
            if !wanted.contains(where: { $0.hasPrefix("\(forwarder.process):") }) {
                unlink(forwarder.backends)
            }
        }
        save(app)
    }

    private func backendsPath(app: String, process: String) -> String {
        "\(files.directory)/\(app).\(process).backends"
    }

    /// Every 30 s, each log of a process that runs is rotated if it has grown past its limit: a process's output
    /// takes at most about twice `ProcessLog.limit`, plus what it writes in 30 s.
    private func rotateLogsNowAndThen() async {
        while (try? await Task.sleep(for: .seconds(30))) != nil {
            for (app, state) in apps {
                let names = Set(state.generations.flatMap { $0.processes.map(\.name) })
                for name in names {
                    ProcessLog(stateDirectory: stateDirectory, app: app, process: name).rotateIfNeeded()
                }
            }
        }
    }

    // MARK: - Bookkeeping

    private func find(app: String, instance id: Int64) -> (InstanceRecord, ProcessSpec)? {
        for generation in apps[app]?.generations ?? [] {
            guard let instance = generation.instances.first(where: { $0.id == id }),
                let spec = generation.processes.first(where: { $0.name == instance.process })
            else { continue }
            return (instance, spec)
        }
        return nil
    }

    private func role(app: String, instance id: Int64) -> GenerationRecord.Role? {
        apps[app]?.generations.first { $0.instances.contains { $0.id == id } }?.role
    }

    /// `event: process` for one instance, as `processes(app:)` shows it.
    private func announce(app: String, instance id: Int64) {
        guard let events, let (instance, _) = find(app: app, instance: id), let role = role(app: app, instance: id),
            let generation = apps[app]?.generations.first(where: { $0.instances.contains { $0.id == id } })
        else { return }
        let shown = API.Process(
            name: instance.process, instance: instance.index, pid: instance.identity?.pid, port: instance.port,
            status: role == .stopping ? .stopped : instance.status, release: generation.release,
            startedAt: instance.identity == nil ? nil : instance.startedAt, restarts: instance.restarts)
        events.publish(.process(API.ProcessEvent(app: app, process: shown)))
    }

    private func servingInstances(app: String, generation id: Int64) -> [InstanceRecord] {
        guard let generation = apps[app]?.generations.first(where: { $0.id == id }) else { return [] }
        let serving = Set(generation.processes.filter { $0.publicPort != nil }.map(\.name))
        return generation.instances.filter { serving.contains($0.process) }
    }

    private func update(app: String, instance id: Int64, _ change: (inout InstanceRecord) -> Void) {
        guard var state = apps[app] else { return }
        for g in state.generations.indices {
            if let i = state.generations[g].instances.firstIndex(where: { $0.id == id }) {
                change(&state.generations[g].instances[i])
            }
        }
        apps[app] = state
    }

    private func save(_ app: String) {
        changes.withLock { $0 &+= 1 }
        guard let state = apps[app] else { return }
        do {
            try files.write(state)
        } catch {
            logger.about(app: app).error("cannot save the state of its processes: \(error)")
        }
    }

    private func writeAtomically(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(
            atPath: files.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = path + ".tmp"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
}

/// A port on the loopback that nothing listens on now: the kernel picks it for a socket bound to port 0.
private func freePort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw CocoaError(.fileReadUnknown) }
    defer { close(descriptor) }
    var address = loopback(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
        }
    }
    guard bound else { throw CocoaError(.fileReadUnknown) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// True when something accepts a TCP connection on the loopback at `port`.
private func acceptsConnections(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = loopback(port: port)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

private func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return address
}

/// The first line a process writes to the pipe `descriptor`, or nil once it closes or `timeout` seconds pass.
private func readLine(from descriptor: Int32, timeout: Int32) -> String? {
    var bytes: [UInt8] = []
    var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
    while poll(&poller, 1, timeout * 1000) > 0 {
        var byte: UInt8 = 0
        guard read(descriptor, &byte, 1) == 1 else { break }
        if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
        bytes.append(byte)
    }
    return nil
}
