import ArgumentParser
import Foundation

/// `slipway`: the daemon and its command-line client. This target only parses arguments and wires parts together;
/// everything it runs lives in the libraries, where it can be tested without the binary.
struct Slipway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slipway",
        abstract: "Deploys applications from Git: push, build, switch, check, roll back.",
        version: "0.1.0",
        subcommands: [
            ServeCommand.self, StatusCommand.self, DeployCommand.self, RollbackCommand.self, ReleasesCommand.self,
            LogsCommand.self, CancelCommand.self, HookCommand.self, NotifyCommand.self, ValidateCommand.self,
        ]
    )
}

/// Exit codes from the contract.
enum Exit {
    static let success: Int32 = 0
    /// The operation failed: a failed deployment, invalid files.
    static let failure: Int32 = 1
    /// Bad usage.
    static let usage: Int32 = 2
    /// The daemon could not be reached.
    static let unreachable: Int32 = 3
}

/// An error that carries its exit code and a message for the user.
struct CommandFailure: Error, CustomStringConvertible {
    let code: Int32
    let message: String

    var description: String { message }

    static func failed(_ message: String) -> CommandFailure { CommandFailure(code: Exit.failure, message: message) }
    static func usage(_ message: String) -> CommandFailure { CommandFailure(code: Exit.usage, message: message) }
}

@main
enum Main {
    static func main() async {
        do {
            var command = try Slipway.parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            if !failure.message.isEmpty { printError("slipway: \(failure.message)") }
            exit(failure.code)
        } catch let exitCode as ExitCode {
            exit(exitCode.rawValue)
        } catch {
            // ArgumentParser's own errors: help and version print to stdout and succeed, usage errors exit 2.
            let code = Slipway.exitCode(for: error)
            let message = Slipway.fullMessage(for: error)
            if code == .success {
                print(message)
                exit(Exit.success)
            }
            printError(message)
            exit(code == .validationFailure ? Exit.usage : Exit.failure)
        }
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
