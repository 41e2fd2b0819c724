import AttnaxDist
import AttnaxFormats
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("Determinism at tp = 1")
struct DeterminismTests {
  static let config = BlockConfig(
    block: .decoder, numLayers: 2, dModel: 16, numHeads: 4, dFF: 24, attentionType: .flash,
    attentionBlockSize: 3, normType: .rms, ffActivation: .swiglu, numKVHeads: 2, useRoPE: true,
    scoreMods: [.causal, .alibi])

  static func inputs() -> BlockInputs {
    BlockInputs(
      x: randomTensor([2, 7, 16], seed: 101), encoderOutput: randomTensor([2, 5, 16], seed: 102),
      crossMask: MaskTensor(shape: [2, 1, 1, 5], data: [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]))
  }

  @Test("a stack run twice on the same inputs gives bitwise-identical outputs, as does a second stack")
  func bitwiseRepeatable() throws {
    let group = TestWorld.communicator
    let a = try BlockStack(config: Self.config, source: RandomWeights(seed: 9), group: group)
    let y1 = try a(Self.inputs())
    let y2 = try a(Self.inputs())
    #expect(y1.shape == [2, 7, 16])
    #expect(y1.data.allSatisfy { $0.isFinite })
    #expect(y1.data.map(\.bitPattern) == y2.data.map(\.bitPattern), "two runs of one stack differ")
    let b = try BlockStack(config: Self.config, source: RandomWeights(seed: 9), group: group)
    #expect(try b(Self.inputs()).data.map(\.bitPattern) == y1.data.map(\.bitPattern), "a second stack differs")
    // And the output does depend on the weights (the comparison above is not vacuous).
    let c = try BlockStack(config: Self.config, source: RandomWeights(seed: 10), group: group)
    #expect(try c(Self.inputs()).data != y1.data)
  }

  @Test("KV-cache steps replayed with fresh caches give bitwise-identical outputs")
  func cachedStepsRepeatable() throws {
    let group = TestWorld.communicator
    let stack = try BlockStack(config: Self.config, source: RandomWeights(seed: 9), group: group)
    let enc = randomTensor([1, 5, 16], seed: 7)
    let steps = [randomTensor([1, 4, 16], seed: 1), randomTensor([1, 1, 16], seed: 2), randomTensor([1, 2, 16], seed: 3)]
    func replay() throws -> [[UInt32]] {
      let caches = stack.makeCaches(batch: 1, maxLen: 8)
      return try steps.map { try stack(BlockInputs(x: $0, encoderOutput: enc), caches: caches).data.map(\.bitPattern) }
    }
    let first = try replay(), second = try replay()
    #expect(first == second)
  }
}

@Suite("KV cache consistency at tp = 1")
struct CacheConsistencyTests {
  /// A 2-layer decoder using every position-dependent feature of self-attention.
  static func config(_ type: AttentionType) -> BlockConfig {
    BlockConfig(
      block: .decoder, numLayers: 2, dModel: 16, numHeads: 4, dFF: 24, attentionType: type,
      attentionBlockSize: 2, ffActivation: .geglu, numKVHeads: 1, attentionWindow: 3, useRoPE: true,
      scoreMods: [.causal, .alibi])
  }

  /// Runs x (1, 7, 16) once whole and once as cached steps of 4, 1 and 2 rows; compares each
  /// step with its rows of the whole pass. `crossPositions` gives the steps' cross-attention
  /// query positions explicitly (their global positions) instead of leaving them to the default.
  func compareSteps(_ type: AttentionType, crossPositions: Bool, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let stack = try BlockStack(config: Self.config(type), source: RandomWeights(seed: 21), group: TestWorld.communicator)
    let x = randomTensor([1, 7, 16], seed: 31)
    let enc = randomTensor([1, 3, 16], seed: 32)
    let full = try stack(BlockInputs(x: x, encoderOutput: enc))
    let caches = stack.makeCaches(batch: 1, maxLen: 7)
    var start = 0
    for n in [4, 1, 2] {
      let rows = Tensor(shape: [1, n, 16], data: Array(x.data[(start * 16)..<((start + n) * 16)]))
      let positions = crossPositions ? RoPE.defaultPositions(batch: 1, seq: n, start: start) : nil
      let y = try stack(BlockInputs(x: rows, encoderOutput: enc, crossQPositions: positions), caches: caches)
      let want = Tensor(shape: [1, n, 16], data: Array(full.data[(start * 16)..<((start + n) * 16)]))
      expectClose(
        y, want, atol: 1e-5, rtol: 1e-4, "\(type.rawValue) rows \(start)..<\(start + n)", sourceLocation: sourceLocation)
      start += n
    }
    #expect(caches.allSatisfy { $0.length == 7 }, sourceLocation: sourceLocation)
  }

  @Test(
    "cached steps equal the rows of one full-sequence pass (RoPE, window, causal, ALiBi continue from the cache)",
    arguments: [AttentionType.standard, .flash])
  func cacheMatchesFullSequence(_ type: AttentionType) throws {
    try compareSteps(type, crossPositions: true)
  }

  // Cross-attention queries' default RoPE positions continue after the tokens cached before
  // the step, as in the full-sequence pass.
  @Test(
    "cached steps equal the full-sequence pass when cross-attention query positions are left to the default",
    arguments: [AttentionType.standard, .flash])
  func cacheMatchesFullSequenceDefaultCrossPositions(_ type: AttentionType) throws {
    try compareSteps(type, crossPositions: false)
  }
}
