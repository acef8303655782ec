import ArgumentParser
import Foundation
import SlipwayAPI
import SlipwayClient

/// `slipway`: the daemon and its command-line client. This target parses arguments and wires the libraries
/// together; what each command does lives in SlipwayClient, Deploy and Server, where it is tested without the
/// binary.
struct Slipway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slipway",
        abstract: "Deploys applications from Git: push, build, switch, check, roll back.",
        version: SlipwayVersion.current,
        subcommands: [
            ServeCommand.self, StatusCommand.self, DeployCommand.self, RollbackCommand.self, ReleasesCommand.self,
            LogsCommand.self, CancelCommand.self, PsCommand.self, RestartCommand.self, HookCommand.self,
            NotifyCommand.self, ValidateCommand.self, ForwardCommand.self,
        ]
    )
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
        } catch let error as ClientError {
            if !error.description.isEmpty { emitError("slipway: \(error.description)") }
            exit(error.exitCode)
        } catch let exitCode as ExitCode {
            exit(exitCode.rawValue)
        } catch {
            // ArgumentParser's own errors: help and version print to stdout and succeed, usage errors exit 2.
            let code = Slipway.exitCode(for: error)
            let message = Slipway.fullMessage(for: error)
            if code == .success {
                print(message)
                exit(0)
            }
            emitError(message)
            exit(code == .validationFailure ? ClientError.usage("").exitCode : ClientError.failed("").exitCode)
        }
    }
}
