import ArgumentParser
import Foundation
import Pipeline
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
            NotifyCommand.self, ValidateCommand.self, InitCommand.self, ForwardCommand.self,
        ]
    )

    /// The problem with a command line whose command (or `hook`'s subcommand) does not exist, with the command that
    /// was probably meant; nil when the commands in it exist. ArgumentParser would only say "unexpected argument".
    /// Commands come first, so the look ends at the first option (whose value may follow it).
    static func unknownCommand(in arguments: [String]) -> String? {
        let words = Array(arguments.prefix { !$0.hasPrefix("-") }.prefix(2))
        guard let first = words.first else { return nil }
        let commands = subcommandNames(of: Slipway.self)
        guard commands.contains(first) else { return unknown(first, among: commands, under: "") }
        guard first == "hook", words.count == 2 else { return nil }
        let hook = subcommandNames(of: HookCommand.self)
        return hook.contains(words[1]) ? nil : unknown(words[1], among: hook, under: "hook ")
    }

    /// The names of a command's subcommands, and `help`, which ArgumentParser adds.
    private static func subcommandNames(of command: any ParsableCommand.Type) -> [String] {
        command.configuration.subcommands.compactMap { $0.configuration.commandName } + ["help"]
    }

    /// `unknown command 'statsu'; did you mean 'status'?`, or the commands there are when none is close.
    private static func unknown(_ word: String, among names: [String], under parent: String) -> String {
        let message = "unknown command '\(parent)\(word)'"
        if let close = Suggestion.closest(to: word, in: names) {
            return message + "; did you mean '\(parent)\(close)'?"
        }
        return message + " (the commands are: \(names.dropLast().joined(separator: ", ")))"
    }
}

@main
enum Main {
    static func main() async {
        if let problem = Slipway.unknownCommand(in: Array(CommandLine.arguments.dropFirst())) {
            emitError("slipway: \(problem) (see slipway --help)")
            exit(ClientError.usage("").exitCode)
        }
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
