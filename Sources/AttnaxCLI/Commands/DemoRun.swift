import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

/// `attnax demo`: a small encoder and decoder block with fixed-seed weights, run on the
/// grid and checked against the same computation on one rank.
struct DemoRun {
  let world: Communicator
  let grid: ProcessGrid

  func run() throws {
    let enc = BlockConfig(
      block: .encoder, numLayers: 2, dModel: 128, numHeads: 8, dFF: 512,
      attentionType: .flash, attentionBlockSize: 32, numKVHeads: 4,
      useRoPE: true, scoreMods: [.causal])
    let dec = BlockConfig(
      block: .decoder, numLayers: 1, dModel: 128, numHeads: 8, dFF: 256,
      normType: .rms, ffActivation: .swiglu)
    let weights = RandomWeights(seed: 42)
    let x = Self.input(batch: 2, seq: 96, d: 128, seed: 1)
    let memory = Self.input(batch: 2, seq: 48, d: 128, seed: 2)
    Launch.say(
      world,
      "attnax demo: \(world.size) rank(s), tp \(grid.tpSize) x cp \(grid.cpSize), \(BLASCore.summary)"
    )
    for (label, config, inputs) in [
      ("encoder (2 layers, flash, GQA 8/4, RoPE, causal)", enc, BlockInputs(x: x)),
      ("decoder (RMSNorm, SwiGLU, cross-attention)", dec, BlockInputs(x: x, encoderOutput: memory)),
    ] {
      let stack = try BlockStack(config: config, source: weights, grid: grid)
      let t0 = MonotonicClock.seconds()
      let y = try stack.forward(inputs)
      let ms = (MonotonicClock.seconds() - t0) * 1000
      // The oracle: the same blocks on one process.
      let solo = try BlockStack(config: config, source: weights, group: .solo())
      let ref = try solo.forward(inputs)
      let r = Tolerance(atol: 1e-4, rtol: 1e-4).compare(got: y.data, want: ref.data)
      let ok = try world.allreduceMin(r.worstRatio <= 1 ? 1 : 0) == 1
      Launch.say(
        world,
        String(
          format: "  %@: x %@ -> y %@ in %.1f ms; vs 1 rank max err %.1e %@",
          label, "\(inputs.x.shape)", "\(y.shape)", ms, r.maxAbsError, ok ? "(match)" : "(MISMATCH)"))
      guard ok else { throw LaunchError.input(0, "demo output differs from the single-rank run") }
    }
    // A tiny decoder-only model: prefill a prompt, decode with the KV cache (sharded over cp,
    // heads over tp), and compare token for token with one rank.
    let config = TransformerConfig.demo
    let prompt: [Int32] = [3, 14, 15, 92, 65, 35, 89, 79]
    let model = try TransformerModel(config: config, source: RandomWeights(seed: 7), group: grid.tp, cp: grid.cp)
    let t0 = MonotonicClock.seconds()
    let tokens = try model.generate(prompt: prompt, maxNewTokens: 8, world: world)
    let ms = (MonotonicClock.seconds() - t0) * 1000
    let solo = try TransformerModel(config: config, source: RandomWeights(seed: 7), group: .solo())
    let ref = try solo.generate(prompt: prompt, maxNewTokens: 8, world: .solo())
    let same = try world.allreduceMin(tokens == ref ? 1 : 0) == 1
    Launch.say(
      world,
      String(
        format: "  decoder-only model (2 layers, GQA 4/2, RoPE): prefill %d tokens + 8 decode steps in %.1f ms -> %@ %@",
        prompt.count, ms, tokens.map(String.init).joined(separator: " "),
        same ? "(same tokens as 1 rank)" : "(DIFFERENT from 1 rank)"))
    guard same else { throw LaunchError.input(0, "demo decode differs from the single-rank run") }
  }

  static func input(batch: Int, seq: Int, d: Int, seed: UInt64) -> Tensor {
    let w = try! RandomWeights(seed: seed).load("x", shape: [batch * seq, d], rows: nil, columns: nil)
    return Tensor(shape: [batch, seq, d], data: w.data.map { $0 * 2 })
  }
}
