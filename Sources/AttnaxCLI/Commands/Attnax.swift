import ArgumentParser
import Foundation

/// The `attnax` command: one subcommand per job (generate, embed, demo, golden, forward, bench, bounds, serve).
public struct Attnax: ParsableCommand {
  /// The subcommands and help text.
  public static let configuration = CommandConfiguration(
    commandName: "attnax",
    abstract: "Distributed transformer inference on CPUs (MPI + OpenBLAS): attnax blocks, Llama- and BERT-family models.",
    subcommands: [
      Generate.self, Embed.self, Demo.self, Golden.self, Forward.self, Bench.self, Bounds.self, Serve.self, Plan.self,
    ])

  /// Parses the arguments; ArgumentParser needs a public initialiser for the root command.
  public init() {}

  /// Parses the arguments and runs the command they name. A usage error (an unknown flag, a
  /// value that does not parse, a failed `validate()`) is bad input like any other: every rank
  /// starts MPI and agrees, rank 0 prints one `error:` line, and every rank exits 2.
  /// `--help` and `--version` print as usual.
  public static func main() {
    var command: ParsableCommand
    do {
      command = try parseAsRoot()
    } catch {
      guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
      let text = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
      do { try Launch.main { _ in throw LaunchError.input(0, text) } } catch { Foundation.exit(2) }
    }
    do { try command.run() } catch { exit(withError: error) }
  }
}
