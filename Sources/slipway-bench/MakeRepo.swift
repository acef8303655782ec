import ArgumentParser
import Foundation
import TestSupport

/// Writes a deterministic bare repository, through `git fast-import`, for the other cases to measure on: the same
/// arguments give the same commits, byte for byte, on every machine.
struct MakeRepo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-repo", abstract: "Write a deterministic bare repository for benchmarks.")

    @Option(help: "Files in the tree.") var files = 1000
    @Option(help: "Commits on main; the first adds every file, each later one changes one to three files.")
    var commits = 1
    @Option(help: "Average file size in bytes (sizes vary from a fifth to nine fifths of it).")
    var averageBytes = 6800
    @Option(help: "Lightweight tags spread evenly over the history.") var tags = 0
    @Option(help: "Extra branches spread evenly over the history.") var branches = 0
    @Argument(help: "The repository to create; it must not exist yet.") var directory: String

    func run() throws {
        guard !FileManager.default.fileExists(atPath: directory) else {
            throw ValidationError("\(directory) already exists")
        }
        try GitCLI.run(["init", "-q", "--bare", "-b", "main", directory])
        var generator = RepositoryGenerator(files: files, averageBytes: averageBytes)
        let stream = generator.fastImportStream(commits: commits, tags: tags, branches: branches)
        try GitCLI.run(["fast-import", "--quiet", "--done"], in: directory, input: stream)
        try GitCLI.run(["gc", "-q"], in: directory)
        let count = try GitCLI.run(["rev-list", "--count", "main"], in: directory)
        let refs = try GitCLI.run(["for-each-ref", "--format=x"], in: directory).split(separator: "\n").count
        let bytes = generator.bytesInTree
        print("made \(directory): \(files) files, \(bytes / 1_000_000) MB in the tree, \(count) commits, \(refs) refs")
        report("make-repo", ["files": files, "bytes": bytes, "commits": Int(count) ?? 0, "refs": refs])
    }
}

struct RepositoryGenerator {
    let files: Int
    let averageBytes: Int
    var random = SplitMix64(state: 0x5119_3A7)
    var bytesInTree = 0
    private var sizes: [Int] = []

    private static let words = [
        "let", "var", "func", "return", "struct", "deploy", "release", "commit", "branch", "switch", "health",
        "build", "test", "migrate", "current", "shared", "queue", "worker", "request", "response", "error", "value",
        "if", "else", "for", "in", "while", "guard", "self", "true", "false", "nil", "try", "await", "async",
    ]

    init(files: Int, averageBytes: Int) {
        self.files = files
        self.averageBytes = averageBytes
    }

    func path(of index: Int) -> String {
        let extensions = ["swift", "go", "js", "txt", "md", "json"]
        let name = index % 211 == 0 ? "résumé-\(index)" : "file\(index)"
        return "src/m\(index / 1000)/p\((index / 50) % 20)/\(name).\(extensions[index % extensions.count])"
    }

    mutating func contents(size: Int, salt: Int) -> Data {
        var text = "// generated file \(salt)\n"
        text.reserveCapacity(size + 80)
        while text.utf8.count < size {
            let count = 3 + random.below(9)
            let line = (0..<count).map { _ in Self.words[random.below(Self.words.count)] }.joined(separator: " ")
            text += String(repeating: " ", count: 4 * random.below(4)) + line + "\n"
        }
        return Data(text.utf8)
    }

    mutating func fastImportStream(commits: Int, tags: Int, branches: Int) -> Data {
        var out = Data()
        func append(_ text: String) { out.append(contentsOf: Array(text.utf8)) }
        func appendData(_ data: Data) {
            append("data \(data.count)\n")
            out.append(data)
            append("\n")
        }
        var time = 1_767_225_600  // 2026-01-01T00:00:00Z
        for commit in 1...max(1, commits) {
            append("commit refs/heads/main\nmark :\(commit)\n")
            append(
                "author Bench <bench@example.com> \(time) +0000\ncommitter Bench <bench@example.com> \(time) +0000\n")
            appendData(Data((commit == 1 ? "Add \(files) files" : "Change \(commit)").utf8))
            if commit > 1 { append("from :\(commit - 1)\n") }
            let touched: [Int] =
                commit == 1 ? Array(0..<files) : (0..<(1 + random.below(3))).map { _ in random.below(files) }
            for index in touched {
                if commit == 1 {
                    let size = max(16, averageBytes / 5 + random.below(max(1, averageBytes * 8 / 5)))
                    sizes.append(size)
                }
                let data = contents(size: sizes[index], salt: index * 7919 + commit)
                if commit == 1 { bytesInTree += data.count }
                if index % 500 == 499 {
                    append("M 120000 inline \(path(of: index)).link\n")
                    appendData(Data("../p\((index / 50) % 20)/file\(index - 1).txt".utf8))
                }
                append("M \(index % 97 == 0 ? "100755" : "100644") inline \(path(of: index))\n")
                appendData(data)
            }
            time += 60
        }
        let total = max(1, commits)
        for tag in 0..<tags {
            append("reset refs/tags/t\(tag)\nfrom :\(1 + (tag * total) / max(1, tags))\n\n")
        }
        for branch in 0..<branches {
            append("reset refs/heads/b\(branch)\nfrom :\(1 + (branch * total) / max(1, branches))\n\n")
        }
        append("done\n")
        return out
    }
}
