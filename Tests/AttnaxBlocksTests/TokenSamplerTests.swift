// TokenSampler at one rank: greedy is the arg max (ties: lowest id); top-k and top-p keep exactly
// the tokens they should; sampling draws from softmax(l / T) restricted to them (checked by
// frequencies over many seeded draws, deterministic); the same seed gives the same draws.
// Across vocabulary shards and layouts: DistributedBlockTests.sampledGenerationMatches.

import AttnaxDist
import AttnaxFormats
import Foundation
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("Token sampler")
struct TokenSamplerTests {
  func sampler(_ o: SamplingOptions, vocab: Int) -> TokenSampler {
    TokenSampler(options: o, group: .solo(), rows: 0..<vocab)
  }

  @Test("greedy picks the arg max of every row, the lowest id on ties")
  func greedy() throws {
    let logits = Tensor(shape: [3, 5], data: [0, 3, 1, 3, -1, 2, 2, 2, 2, 2, -5, -4, -3, 7, 6.5])
    #expect(try sampler(SamplingOptions(), vocab: 5).choose(logits, step: 0) == [1, 0, 3])
  }

  @Test("top-k samples only among the k most likely tokens, top-p only inside the nucleus")
  func restrictions() throws {
    // Probabilities at T = 1: softmax of these logits.
    let l: [Float] = [2.0, 1.0, 0.5, 0.0, -1.0, -3.0]
    let logits = Tensor(shape: [1, 6], data: l)
    var seen = Set<Int32>()
    for seed in 0..<400 {
      seen.insert(try sampler(SamplingOptions(temperature: 1, topK: 2, seed: UInt64(seed)), vocab: 6).choose(logits, step: 0)[0])
    }
    #expect(seen == [0, 1])
    // Probabilities 0.53, 0.20, 0.12, 0.07, 0.03, 0.004: top-p 0.8 keeps the first three
    // (mass before the third is 0.73 < 0.8, before the fourth 0.85).
    seen = []
    for seed in 0..<600 {
      seen.insert(
        try sampler(SamplingOptions(temperature: 1, topP: 0.8, seed: UInt64(seed)), vocab: 6).choose(logits, step: 3)[0])
    }
    #expect(seen == [0, 1, 2])
    // Both: top-k 4 first, then the nucleus renormalised over those four.
    seen = []
    for seed in 0..<600 {
      seen.insert(
        try sampler(SamplingOptions(temperature: 1, topK: 4, topP: 0.8, seed: UInt64(seed)), vocab: 6).choose(logits, step: 1)[0])
    }
    #expect(seen == [0, 1, 2])
  }

  @Test("sampling draws tokens with the softmax(l / T) frequencies")
  func frequencies() throws {
    let l: [Float] = [1.0, 0.5, 0.0, -0.5, -2.0]
    let T: Float = 0.7
    let z = l.map { exp(Double($0 / T)) }
    let p = z.map { $0 / z.reduce(0, +) }
    var counts = [Int](repeating: 0, count: 5)
    let draws = 20_000
    let s = sampler(SamplingOptions(temperature: T, seed: 11), vocab: 5)
    // One row per draw: rows have independent noise.
    let logits = Tensor(shape: [draws, 5], data: Array((0..<draws).map { _ in l }.joined()))
    for t in try s.choose(logits, step: 0) { counts[Int(t)] += 1 }
    for (i, c) in counts.enumerated() {
      let f = Double(c) / Double(draws)
      // 5 standard deviations of a binomial frequency.
      let bound = 5 * (p[i] * (1 - p[i]) / Double(draws)).squareRoot()
      #expect(abs(f - p[i]) <= bound, "token \(i): frequency \(f), probability \(p[i])")
    }
  }

  @Test("the same seed and step give the same tokens; another seed or step, other draws")
  func determinism() throws {
    let logits = Tensor(shape: [4, 8], data: (0..<32).map { Float(($0 * 37) % 11) / 5 })
    let o = SamplingOptions(temperature: 1.3, topK: 6, topP: 0.95, seed: 99)
    let a = try sampler(o, vocab: 8).choose(logits, step: 5)
    #expect(try sampler(o, vocab: 8).choose(logits, step: 5) == a)
    var other = o; other.seed = 100
    let differ = try (0..<20).contains { step in
      try sampler(other, vocab: 8).choose(logits, step: step) != sampler(o, vocab: 8).choose(logits, step: step)
    }
    #expect(differ)
  }

  @Test("out-of-range options are refused naming the option")
  func validation() {
    for (o, name) in [
      (SamplingOptions(temperature: -1), "temperature"), (SamplingOptions(topK: -2), "top-k"),
      (SamplingOptions(topP: 0), "top-p"), (SamplingOptions(topP: 1.5), "top-p"),
    ] {
      expectInputError(name) { try o.validate() }
    }
  }
}
