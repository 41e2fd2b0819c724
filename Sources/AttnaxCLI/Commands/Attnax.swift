import ArgumentParser

/// The `attnax` command: one subcommand per job (golden, forward, demo, generate, bench).
public struct Attnax: ParsableCommand {
  /// The subcommands and help text.
  public static let configuration = CommandConfiguration(
    commandName: "attnax",
    abstract: "Distributed attnax encoder/decoder blocks on CPUs (MPI + OpenBLAS).",
    subcommands: [Golden.self, Forward.self, Demo.self, Generate.self, Bench.self])

  /// Parses the arguments; ArgumentParser needs a public initialiser for the root command.
  public init() {}
}
