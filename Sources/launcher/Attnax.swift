import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import Foundation

@main
struct Attnax: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "attnax",
    abstract: "Distributed attnax encoder/decoder blocks on CPUs (MPI + OpenBLAS).",
    subcommands: [Golden.self, Forward.self, Demo.self])
}

struct Golden: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run golden case directories and compare with their expected outputs.")
  @Argument(help: "Case directories.") var dirs: [String]
  @OptionGroup var layout: LayoutOptions

  func run() throws {
    try Launch.main { world in
      var passed = 0, failed = 0
      for dir in dirs {
        let name = ((dir.hasSuffix("/") ? String(dir.dropLast()) : dir) as NSString).lastPathComponent
        let loaded: Result<GoldenCase, Error> = Result { try GoldenCase(dir) }
        if let bad = try world.agree(loaded.failureText) {
          failed += 1
          Launch.say(world, "FAIL \(name): error on rank \(bad.rank): \(bad.message)")
          continue
        }
        let golden = try loaded.get()
        let grid = try layout.grid(world, heads: golden.model.config.num_heads)
        let outcome: Result<GoldenOutcome, Error> = Result { try golden.run(group: grid.tp, cp: grid.cp) }
        if let bad = try world.agree(outcome.failureText) {
          failed += 1
          Launch.say(world, "FAIL \(name): error on rank \(bad.rank): \(bad.message)")
          continue
        }
        let o = try outcome.get()
        // Agree on the verdict: a case passes only if it passes on every rank.
        let ok = try world.allreduceMin(o.passed ? 1 : 0) == 1
        if ok { passed += 1 } else { failed += 1 }
        Launch.say(world, String(format: "%@ %@  max_err %.3e  worst err/tol %.3f", ok ? "ok  " : "FAIL", name, o.maxAbsError, o.worstRatio))
      }
      Launch.say(world, "\(passed) passed, \(failed) failed")
      return failed == 0 ? 0 : 1
    }
  }
}

struct Forward: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run a model directory on an input file and write y atomically.")
  @Option(help: "Model directory (config.json + model.safetensors).") var model: String
  @Option(help: "Input safetensors (x, and masks/positions/encoder_output under the golden names).") var input: String
  @Option(help: "Output safetensors to create (holds y).") var output: String
  @OptionGroup var layout: LayoutOptions

  func run() throws {
    try Launch.main { world in
      let dir = Result { try ModelDirectory(model) }
      if let bad = try world.agree(dir.failureText) { throw LaunchError.input(bad.rank, bad.message) }
      let grid = try layout.grid(world, heads: try dir.get().config.num_heads)
      let y: Result<Tensor, Error> = Result {
        let dir = try dir.get()
        let io = try SafetensorsFile(path: input)
        let c = try InputFile.read(io, config: dir.config)
        let stack = try BlockStack(config: dir.config, source: dir.weights, grid: grid)
        return try stack.forward(c)
      }
      if let bad = try world.agree(y.failureText) { throw LaunchError.input(bad.rank, bad.message) }
      if world.rank == 0 {
        try SafetensorsWriter.write([(name: "y", value: .f32(try y.get()))], to: output)
      }
      try world.barrier()
      Launch.say(world, "wrote y \(try y.get().shape) to \(output)")
      return 0
    }
  }
}

struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run a small built-in encoder and decoder block (fixed-seed weights, no files).")
  @OptionGroup var layout: LayoutOptions

  func run() throws {
    try Launch.main { world in
      let grid = try layout.grid(world)
      try DemoRun(world: world, grid: grid).run()
      return 0
    }
  }
}

extension Result {
  /// The error's one-line description, or nil on success (what ranks agree on).
  var failureText: String? { if case let .failure(e) = self { return "\(e)" } else { return nil } }
}
