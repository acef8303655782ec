import ArgumentParser
import Foundation
import Pipeline

/// `slipway validate [PATH...]`: checks pipeline files without a daemon.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files; print one file:line:column: message line per error.",
        discussion: "Exits 1 if any file has an error. ${NAME} values are read from this environment.")

    @Argument(help: "Pipeline files or folders of them (default: ./pipelines).") var paths: [String] = []

    func run() throws {
        let loader = PipelineLoader()
        var files: [String] = []
        for path in paths.isEmpty ? ["pipelines"] : paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CommandFailure.failed("\(path): no such file or folder")
            }
            files += isDirectory.boolValue ? try PipelineLoader.pipelineFiles(in: path) : [path]
        }
        var errorCount = 0
        for file in files {
            do {
                _ = try loader.load(file: file)
            } catch {
                for problem in error.errors { print(problem.description) }
                errorCount += error.errors.count
            }
        }
        let summary = "\(files.count) pipeline file\(files.count == 1 ? "" : "s"), \(errorCount) error\(errorCount == 1 ? "" : "s")"
        printError(summary)
        if errorCount > 0 { throw CommandFailure(code: Exit.failure, message: "") }
    }
}
