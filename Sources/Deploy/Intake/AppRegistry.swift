import Foundation
import Logging
import Pipeline

/// An app as the daemon knows it: its pipeline (the last good one) and, when its file is broken, why.
struct AppDefinition: Sendable, Equatable {
    var name: String
    var file: String
    /// The last pipeline that loaded; nil when the file has never been valid.
    var pipeline: Pipeline?
    /// The errors of the file as it is now, when it does not load.
    var configError: String?
}

/// The pipeline files of `--pipelines DIR`, reloaded on demand. A file that becomes invalid keeps its app on the
/// last good pipeline and reports `config_error`; a file that disappears removes its app.
actor AppRegistry {
    nonisolated let directory: String
    private let loader: PipelineLoader
    private let logger: Logger
    /// The apps as last loaded. Reloads run on the actor, one at a time; readers take the snapshot under a lock,
    /// without waiting for the actor: every request and every webhook reads it.
    private let snapshot = Locked([String: AppDefinition]())
    /// The loaded pipelines by normalized repository URL, for matching webhook deliveries without normalizing
    /// every app's URL on every delivery.
    private let byRepository = Locked([String: [Pipeline]]())
    /// Delivery URLs already normalized: a forge names the same few URLs in every delivery for a repository, and
    /// under a flood of deliveries normalizing them again showed in profiles. Bounded in entries and in length,
    /// because deliveries are read before they are authenticated.
    private let normalizedURLs = Locked([String: String]())
    private static let normalizedURLLimit = (count: 1024, bytes: 512)
    /// What each file looked like when last read, to notice changes cheaply.
    private var fingerprints: [String: FileFingerprint] = [:]
    private let changes = Locked<UInt64>(0)

    /// A number that changes whenever an app's definition does, for caches.
    nonisolated var generation: UInt64 { changes.value }

    init(directory: String, loader: PipelineLoader = PipelineLoader(), logger: Logger = Logger(label: "slipway")) {
        self.directory = directory
        self.loader = loader
        self.logger = logger
    }

    nonisolated var all: [AppDefinition] { snapshot.value.values.sorted { $0.name < $1.name } }

    nonisolated func app(_ name: String) -> AppDefinition? { snapshot.withLock { $0[name] } }

    /// The pipelines that loaded, for recovery and the watchers.
    nonisolated var pipelines: [Pipeline] { all.compactMap(\.pipeline) }

    /// The pipelines whose repository is one of `urls` (compared as webhooks compare them), sorted by app.
    nonisolated func pipelines(following urls: [String]) -> [Pipeline] {
        let keys = Set(urls.map(normalized))
        let index = byRepository.value
        return keys.flatMap { index[$0] ?? [] }.sorted { $0.app < $1.app }
    }

    private nonisolated func normalized(_ url: String) -> String {
        guard url.utf8.count <= Self.normalizedURLLimit.bytes else { return RepositoryURL.normalize(url) }
        if let known = normalizedURLs.withLock({ $0[url] }) { return known }
        let key = RepositoryURL.normalize(url)
        normalizedURLs.withLock { cache in
            if cache.count >= Self.normalizedURLLimit.count { cache.removeAll(keepingCapacity: true) }
            cache[url] = key
        }
        return key
    }

    /// `deployment` as clients see it: its app's secrets in the error read `***`. Everything that leaves the daemon
    /// goes through this, the listings and the events included.
    nonisolated func masked(_ deployment: Deployment) -> Deployment {
        Self.mask(deployment, SecretMasker(app(deployment.app)?.pipeline?.secrets ?? []))
    }

    static func mask(_ deployment: Deployment, _ masker: SecretMasker) -> Deployment {
        guard !masker.isEmpty, let error = deployment.error else { return deployment }
        var copy = deployment
        copy.error = masker.mask(error)
        return copy
    }

    /// Reads every pipeline file again when `force`, or only the files that changed. Returns the apps whose
    /// definition changed.
    @discardableResult
    func reload(force: Bool = false) -> [String] {
        let files = (try? PipelineLoader.pipelineFiles(in: directory)) ?? []
        var apps = snapshot.value
        defer {
            snapshot.withLock { $0 = apps }
            byRepository.withLock { index in
                index = Dictionary(grouping: apps.values.compactMap(\.pipeline)) {
                    RepositoryURL.normalize($0.repository)
                }
            }
        }
        var seen: Set<String> = []
        var changed: [String] = []
        for file in files {
            let name = String((file as NSString).lastPathComponent.dropLast(".yml".count))
            seen.insert(name)
            let fingerprint = FileFingerprint(path: file)
            if !force, fingerprints[file] == fingerprint, apps[name] != nil { continue }
            fingerprints[file] = fingerprint
            var definition = apps[name] ?? AppDefinition(name: name, file: file)
            do {
                definition.pipeline = try loader.load(file: file)
                definition.configError = nil
                logger.info("loaded pipeline \(file)")
            } catch {
                definition.configError = error.description
                logger.error(
                    "pipeline \(file) is invalid; \(definition.pipeline == nil ? "the app cannot deploy" : "keeping its last good version"):\n\(error.description)"
                )
            }
            if apps[name] != definition {
                apps[name] = definition
                changed.append(name)
                changes.withLock { $0 &+= 1 }
            }
        }
        for name in apps.keys where !seen.contains(name) {
            apps.removeValue(forKey: name)
            fingerprints = fingerprints.filter { !$0.key.hasSuffix("/\(name).yml") }
            logger.info("pipeline for \(name) was removed")
            changed.append(name)
            changes.withLock { $0 &+= 1 }
        }
        return changed.sorted()
    }
}

/// Enough of a file's metadata to tell that it changed without reading it.
struct FileFingerprint: Equatable {
    var modified: Int64
    var size: Int64
    var inode: UInt64

    init(path: String) {
        var info = stat()
        if stat(path, &info) == 0 {
            modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            size = Int64(info.st_size)
            inode = UInt64(info.st_ino)
        } else {
            modified = 0
            size = -1
            inode = 0
        }
    }
}
