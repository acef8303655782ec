import ArgumentParser
import Pipeline
import SlipwayClient

/// `slipway validate [PATH...]`: checks pipeline files without a daemon.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files; print one file:line:column: message line per error.",
        discussion: "Exits 1 if any file has an error. ${NAME} values are read from this environment.")

    @Argument(help: "Pipeline files or folders of them (default: ./pipelines).") var paths: [String] = []

    func run() throws {
        let validation: PipelineValidation
        do {
            validation = try PipelineValidation(paths: paths.isEmpty ? ["pipelines"] : paths, loader: PipelineLoader())
        } catch {
            throw ClientError.failed(error.message)
        }
        for problem in validation.problems { print(problem.description) }
        emitError(validation.summary)
        if !validation.problems.isEmpty { throw ClientError.failed("") }
    }
}
