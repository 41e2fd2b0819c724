import ArgumentParser

/// The `attnax` command: one subcommand per job (generate, embed, demo, golden, forward, bench, bounds).
public struct Attnax: ParsableCommand {
  /// The subcommands and help text.
  public static let configuration = CommandConfiguration(
    commandName: "attnax",
    abstract: "Distributed transformer inference on CPUs (MPI + OpenBLAS): attnax blocks, Llama- and BERT-family models.",
    subcommands: [Generate.self, Embed.self, Demo.self, Golden.self, Forward.self, Bench.self, Bounds.self])

  /// Parses the arguments; ArgumentParser needs a public initialiser for the root command.
  public init() {}
}
