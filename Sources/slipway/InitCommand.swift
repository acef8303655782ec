import ArgumentParser
import Foundation
import Pipeline
import SlipwayClient

/// `slipway init APP [--repository URL]`: writes a pipeline file to start from.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a pipeline file for a new app, with every key and its default, commented.",
        discussion: """
            The file validates as written: the keys whose default it states are set, the optional ones are \
            commented out with an example. A relative --repository path is made absolute, since the file is read \
            from the pipelines folder.
            """)

    @Argument(help: "The new app's name: lower-case letters, digits, - and _ (the file is APP.yml).") var app: String
    @Option(help: "The repository to deploy from: a path on this machine, or a URL (default: /srv/git/APP.git).")
    var repository: String?
    @Option(help: "The folder of pipeline files to write into.") var pipelines = "./pipelines"
    @Flag(help: "Replace the file if it exists.") var force = false

    func run() throws {
        guard isValidAppName(app) else {
            throw ClientError.usage("'\(app)' is not a valid app name: it must match ^[a-z0-9][a-z0-9_-]{0,62}$")
        }
        let file = (pipelines as NSString).appendingPathComponent("\(app).yml")
        let source = repository.map {
            PipelineTemplate.repositoryValue($0, from: FileManager.default.currentDirectoryPath)
        }
        let text = PipelineTemplate.text(app: app, repository: source ?? PipelineTemplate.defaultRepository(app: app))
        do {
            _ = try PipelineLoader().load(yaml: text, app: app, file: file, baseDirectory: pipelines)
        } catch {
            throw ClientError.usage(error.errors.map(\.message).joined(separator: "; "))
        }
        if FileManager.default.fileExists(atPath: file) && !force {
            throw ClientError.failed("\(file) already exists; use --force to replace it")
        }
        do {
            try FileManager.default.createDirectory(atPath: pipelines, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        } catch {
            throw ClientError.failed("cannot write \(file): \(error.localizedDescription)")
        }
        print("wrote \(file): every key with its default, the optional ones commented out")
        print("check it after editing with: slipway validate \(file)")
    }
}
