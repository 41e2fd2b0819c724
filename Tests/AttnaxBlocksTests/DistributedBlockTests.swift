import AttnaxDist
import AttnaxFormats
import Foundation
import Testing
import _TestSupport

@testable import AttnaxBlocks

/// Every (tp, cp) grid of the world must reproduce the single-rank computation (the oracle).
/// It means something only with several ranks: scripts/test runs it under mpirun at np=2 and
/// np=3; under plain `swift test` (one rank) it is disabled.
@Suite("Distributed blocks", .serialized, .enabled(if: TestWorld.size > 1, "needs mpirun -np 2 or more"))
struct DistributedBlockTests {
  static var world: Communicator { TestWorld.communicator }

  /// Every grid tp x cp == world size with tp <= heads.
  static func grids(heads: Int) throws -> [ProcessGrid] {
    let n = world.size
    return try (1...n).filter { n % $0 == 0 && $0 <= heads }.map { try ProcessGrid.make(world: world, tp: $0, cp: n / $0) }
  }

  static func tensor(_ shape: [Int], seed: UInt64) -> Tensor {
    let n = shape.reduce(1, *)
    let t = try! RandomWeights(seed: seed).load("input", shape: [n, 1], rows: nil, columns: nil)
    return Tensor(shape: shape, data: t.data.map { $0 * 2 })
  }

  nonisolated(unsafe) static let cases: [(String, BlockConfig, (Int) -> BlockInputs)] = {
    let padMask = { (b: Int, s: Int) -> MaskTensor in
      MaskTensor(shape: [b, 1, 1, s], data: (0..<b).flatMap { bi in (0..<s).map { UInt8($0 < s - 3 * bi ? 1 : 0) } })
    }
    return [
      (
        "6 heads / 3 KV heads, RMSNorm, padding mask (uneven splits)",
        BlockConfig(block: .encoder, dModel: 48, numHeads: 6, dFF: 96, normType: .rms, numKVHeads: 3),
        { s in BlockInputs(x: tensor([2, s, 48], seed: 1), selfMask: padMask(2, s)) }
      ),
      (
        "10 heads, GeGLU, flash block 5, causal + alibi (zigzag ring)",
        BlockConfig(
          block: .encoder, dModel: 40, numHeads: 10, dFF: 70, attentionType: .flash, attentionBlockSize: 5,
          ffActivation: .geglu, scoreMods: [.causal, .alibi]),
        { s in BlockInputs(x: tensor([1, s, 40], seed: 2)) }
      ),
      (
        "MQA 4/1 with RoPE and attention_window 4 (more ranks than KV heads)",
        BlockConfig(
          block: .encoder, numLayers: 2, dModel: 32, numHeads: 4, dFF: 64, numKVHeads: 1,
          attentionWindow: 4, useRoPE: true, ropeMaxPositions: 64),
        { s in BlockInputs(x: tensor([2, s, 32], seed: 3)) }
      ),
      (
        "decoder with GQA 8/2, SwiGLU, cross-attention and both masks",
        BlockConfig(
          block: .decoder, dModel: 64, numHeads: 8, dFF: 96, attentionType: .memoryEfficient,
          attentionBlockSize: 4, ffActivation: .swiglu, numKVHeads: 2, useRoPE: true, ropeMaxPositions: 64),
        { s in
          BlockInputs(
            x: tensor([2, s, 64], seed: 4), encoderOutput: tensor([2, 9, 64], seed: 5),
            selfMask: MaskTensor(shape: [1, 1, s, s], data: (0..<(s * s)).map { UInt8($0 % s <= $0 / s ? 1 : 0) }),
            crossMask: padMask(2, 9))
        }
      ),
      (
        "linear attention, chunk 4, padding mask (carried state)",
        BlockConfig(block: .encoder, dModel: 32, numHeads: 4, dFF: 64, attentionType: .linear, linearAttentionChunkSize: 4),
        { _ in BlockInputs(x: tensor([2, 16, 32], seed: 6), selfMask: padMask(2, 16)) }
      ),
      (
        "lite attention decoder with a shorter encoder output",
        BlockConfig(block: .decoder, dModel: 32, numHeads: 4, dFF: 64, attentionType: .lite),
        { s in BlockInputs(x: tensor([2, s, 32], seed: 7), encoderOutput: tensor([2, 6, 32], seed: 8)) }
      ),
    ]
  }()

  @Test("Every grid matches the single-rank computation", arguments: 0..<6)
  func gridMatchesSingleRank(index: Int) throws {
    let (label, config, makeInputs) = Self.cases[index]
    let weights = RandomWeights(seed: UInt64(100 + index))
    for seq in [11, 16] {
      let inputs = makeInputs(seq)
      let want = try BlockStack(config: config, source: weights, group: .solo()).forward(inputs)
      for grid in try Self.grids(heads: config.numHeads) {
        let got = try BlockStack(config: config, source: weights, grid: grid).forward(inputs)
        expectClose(got, want, atol: 2e-5, rtol: 2e-5, "\(label), seq \(seq), tp \(grid.tpSize) x cp \(grid.cpSize)")
      }
    }
  }

  @Test("KV-cache steps under every grid match the single-rank steps")
  func kvCacheStepsMatch() throws {
    let config = BlockConfig(
      block: .decoder, numLayers: 2, dModel: 32, numHeads: 4, dFF: 64, numKVHeads: 2,
      attentionWindow: 5, useRoPE: true, ropeMaxPositions: 64, scoreMods: [.alibi])
    let weights = RandomWeights(seed: 9)
    let enc = Self.tensor([2, 5, 32], seed: 10)
    let steps = [Self.tensor([2, 4, 32], seed: 11), Self.tensor([2, 1, 32], seed: 12), Self.tensor([2, 2, 32], seed: 13)]
    let solo = try BlockStack(config: config, source: weights, group: .solo())
    let soloCaches = solo.makeCaches(batch: 2, maxLen: 8)
    let want = try steps.map { try solo.forward(BlockInputs(x: $0, encoderOutput: enc), caches: soloCaches) }
    for grid in try Self.grids(heads: config.numHeads) {
      let stack = try BlockStack(config: config, source: weights, grid: grid)
      let caches = stack.makeCaches(batch: 2, maxLen: 8)
      #expect(caches[0].width == stack.plan.kvHeads.count * config.headDim)
      for (i, x) in steps.enumerated() {
        let got = try stack.forward(BlockInputs(x: x, encoderOutput: enc), caches: caches)
        expectClose(got, want[i], atol: 2e-5, rtol: 2e-5, "step \(i), tp \(grid.tpSize) x cp \(grid.cpSize)")
      }
      // With cp > 1 the cache is sharded along the sequence: each rank holds a share.
      let held = try grid.cp.allreduceSum(caches[0].localCount)
      #expect(held == caches[0].length)
      if grid.cpSize > 1 { #expect(caches[0].localCount < caches[0].length) }
      #expect(throws: AttnaxError.self) {
        try stack.forward(BlockInputs(x: Self.tensor([2, 2, 32], seed: 14), encoderOutput: enc), caches: caches)
      }
    }
  }

  @Test("Greedy decoding of a full model matches one rank token for token and in logits")
  func generationMatches() throws {
    let config = TransformerConfig.demo
    let prompt: [Int32] = [5, 9, 40, 2, 77, 31, 8, 60, 12]
    let solo = try TransformerModel(config: config, source: RandomWeights(seed: 7), group: .solo())
    let soloCaches = solo.stack.makeCaches(batch: 1, maxLen: 16)
    let wantLogits = try solo.lastLogits(try solo.hidden(IntTensor(shape: [1, prompt.count], data: prompt), caches: soloCaches))
    let wantStep = try solo.lastLogits(try solo.hidden(IntTensor(shape: [1, 1], data: [4]), caches: soloCaches))
    let want = try solo.generate(prompt: prompt, maxNewTokens: 6, world: .solo())
    for grid in try Self.grids(heads: config.numHeads) {
      let model = try TransformerModel(config: config, source: RandomWeights(seed: 7), group: grid.tp, cp: grid.cp)
      let caches = model.stack.makeCaches(batch: 1, maxLen: 16)
      let logits = try model.lastLogits(try model.hidden(IntTensor(shape: [1, prompt.count], data: prompt), caches: caches))
      let step = try model.lastLogits(try model.hidden(IntTensor(shape: [1, 1], data: [4]), caches: caches))
      for (got, ref) in [(logits, wantLogits), (step, wantStep)] {
        expectClose(got, ref, atol: 1e-4, rtol: 1e-4, "tp \(grid.tpSize) x cp \(grid.cpSize): logits")
      }
      let tokens = try model.generate(prompt: prompt, maxNewTokens: 6, world: Self.world)
      #expect(tokens == want, "tp \(grid.tpSize) x cp \(grid.cpSize)")
    }
  }

  @Test("A cached prefill split over the ring, then decode steps, equals the uncached pass over the same tokens")
  func cachedPrefillOverTheRing() throws {
    let config = BlockConfig(
      block: .encoder, numLayers: 2, dModel: 48, numHeads: 6, dFF: 64, attentionType: .flash,
      attentionBlockSize: 4, normType: .rms, ffActivation: .swiglu, numKVHeads: 2, useRoPE: true,
      ropeMaxPositions: 128, scoreMods: [.causal])
    let weights = RandomWeights(seed: 21)
    let solo = try BlockStack(config: config, source: weights, group: .solo())
    for grid in try Self.grids(heads: config.numHeads) {
      let stack = try BlockStack(config: config, source: weights, grid: grid)
      // Shorter than, equal to and longer than cp × block size.
      let ring = grid.cpSize * config.attentionBlockSize
      for promptLength in [max(2, ring - 3), ring, ring + 5] {
        let steps = [promptLength, 1, 1, 2]
        let total = steps.reduce(0, +)
        let all = Self.tensor([2, total, 48], seed: UInt64(30 + promptLength))
        let want = try solo.forward(BlockInputs(x: all))
        let caches = stack.makeCaches(batch: 2, maxLen: total)
        var start = 0
        for (i, n) in steps.enumerated() {
          let got = try stack.forward(BlockInputs(x: Self.slice(all, start..<(start + n))), caches: caches)
          expectClose(
            got, Self.slice(want, start..<(start + n)), atol: 2e-5, rtol: 2e-5,
            "tp \(grid.tpSize) x cp \(grid.cpSize), prompt \(promptLength), step \(i)")
          start += n
        }
        if grid.cpSize > 1 {
          // Each cp rank holds only its share of the cache.
          #expect(caches[0].localCount < caches[0].length)
          #expect(try grid.cp.allreduceSum(caches[0].localCount) == total)
        }
      }
    }
  }

  /// Rows `rows` of a (B, S, F) tensor.
  static func slice(_ t: Tensor, _ rows: Range<Int>) -> Tensor {
    let b = t.shape[0], s = t.shape[1], f = t.shape[2]
    var out: [Float] = []
    for bi in 0..<b { out += t.data[((bi * s + rows.lowerBound) * f)..<((bi * s + rows.upperBound) * f)] }
    return Tensor(shape: [b, rows.count, f], data: out)
  }

  @Test("Sampled generation (temperature, top-k, top-p, a seed) gives the same tokens at every layout, batched prompts too")
  func sampledGenerationMatches() throws {
    let config = TransformerConfig.demo
    let prompts: [[Int32]] = [[5, 9, 40, 2, 77, 31, 8], [60, 12, 3], [44, 4, 4, 18, 90]]
    let options = [
      SamplingOptions(temperature: 0.9, seed: 5), SamplingOptions(temperature: 1.1, topK: 7, seed: 6),
      SamplingOptions(temperature: 0.8, topP: 0.9, seed: 7), SamplingOptions(temperature: 1.0, topK: 20, topP: 0.8, seed: 8),
    ]
    let solo = try TransformerModel(config: config, source: RandomWeights(seed: 7), group: .solo())
    for sampling in options {
      let request = GenerationRequest(prompts: prompts, maxNewTokens: 9, sampling: sampling)
      let want = try Generator(model: solo, world: .solo()).run(request).tokens
      for grid in try Self.grids(heads: config.numHeads) {
        let model = try TransformerModel(config: config, source: RandomWeights(seed: 7), group: grid.tp, cp: grid.cp)
        let got = try Generator(model: model, world: Self.world).run(request).tokens
        #expect(got == want, "tp \(grid.tpSize) x cp \(grid.cpSize), \(sampling)")
      }
    }
  }
}
