import AttnaxFormats
import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import Foundation

struct Generate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Greedy decoding with a full model (TransformerDecoder/Encoder) and the KV cache across ranks.")
  @Option(help: "Full-model directory (config.json with `model` + model.safetensors), or `builtin` for the tiny demo model.")
  var model: String = "builtin"
  @Option(help: "Comma-separated prompt token ids.") var promptIds: String
  @Option(help: "Tokens to generate.") var maxNewTokens: Int = 16
  @OptionGroup var layout: LayoutOptions

  func run() throws {
    try Launch.main { world in
      let loaded: Result<(TransformerConfig, WeightSource), Error> = Result {
        if model == "builtin" { return (TransformerConfig.demo, RandomWeights(seed: 7)) }
        let dir = try ModelDirectory<TransformerConfig>(model)
        return (dir.config, dir.weights)
      }
      if let bad = try world.agree(loaded.failureText) { throw LaunchError.input(bad.rank, bad.message) }
      let (config, weights) = try loaded.get()
      let grid = try layout.grid(world, heads: config.numHeads)
      try Topology.announce(grid)
      // Agreed like every other step: a bad prompt id is refused in one line (not by each rank
      // aborting the job), and ranks given other options (mpirun MPMD) stop together.
      let request = Result { () throws -> [Int32] in
        let prompt: [Int32] = try promptIds.split(separator: ",").map {
          guard let v = Int32($0.trimmingCharacters(in: .whitespaces)) else {
            throw AttnaxError.input(name: "prompt-ids", message: "'\($0)' is not an integer token id")
          }
          return v
        }
        guard maxNewTokens >= 1 else { throw LaunchError.option("--max-new-tokens", "must be at least 1, got \(maxNewTokens)") }
        if let limit = config.sequenceLimit, prompt.count + maxNewTokens > limit.tokens {
          throw LaunchError.option(
            "--max-new-tokens",
            "the prompt (\(prompt.count) tokens) and \(maxNewTokens) new tokens need \(prompt.count + maxNewTokens) positions, but the model holds \(limit.tokens) (\(limit.field))")
        }
        return prompt
      }
      try Launch.agree(world, request)
      let prompt = try request.get()
      let built = Result { try TransformerModel(config: config, source: weights, group: grid.tp, cp: grid.cp) }
      if let bad = try world.agree(built.failureText) { throw LaunchError.input(bad.rank, bad.message) }
      let m = try built.get()
      Launch.say(world, "generate: \(config.model.rawValue) (\(config.numLayers) layers, d_model \(config.dModel)), \(world.size) rank(s) tp \(grid.tpSize) x cp \(grid.cpSize); prompt \(prompt.count) tokens")
      if world.rank == 0 { print("tokens:", terminator: ""); fflush(nil) }
      let t0 = MonotonicClock.seconds()
      let result = Result {
        try m.generate(prompt: prompt, maxNewTokens: maxNewTokens, world: world) { t in
          if world.rank == 0 { print(" \(t)", terminator: ""); fflush(nil) }
        }
      }
      if world.rank == 0 { print("") }
      if let bad = try world.agree(result.failureText) { throw LaunchError.input(bad.rank, bad.message) }
      let s = MonotonicClock.seconds() - t0
      Launch.say(world, String(format: "%d tokens in %.3f s: %.1f tokens/s (prefill included)", maxNewTokens, s, Double(maxNewTokens) / s))
      return 0
    }
  }
}
