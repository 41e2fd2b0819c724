// TokenSampler at one rank: greedy is the arg max (ties: lowest id); top-k and top-p keep exactly
// the tokens they should; sampling draws from softmax(l / T) restricted to them (checked by
// frequencies over many seeded draws, deterministic); the same seed gives the same draws; every
// finite T > 0 works (a tiny one is greedy), a top-k past the vocabulary keeps all tokens.
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

  @Test("a tiny temperature gives the greedy token (l / T would overflow), with top-k and top-p too; ties stay the lowest id")
  func tinyTemperature() throws {
    // Logits above 3.4 overflowed l / 1e-38 to infinity: every such token tied, the lowest id won.
    let logits = Tensor(shape: [3, 5], data: [5, 7, 6, -1, 6.999, 0.5, 0.25, 0, 0.75, 0.7, 9, 9, 3, 9, -2])
    let greedy = try sampler(SamplingOptions(), vocab: 5).choose(logits, step: 0)
    #expect(greedy == [1, 3, 0])
    for T: Float in [1e-38, .leastNonzeroMagnitude, 1e-30, 1e-7] {
      for (k, p) in [(0, Float(1)), (2, 1), (0, 0.5), (3, 0.9), (Int.max, 1)] {
        for seed: UInt64 in 0..<20 {
          let o = SamplingOptions(temperature: T, topK: k, topP: p, seed: seed)
          let got = try sampler(o, vocab: 5).choose(logits, step: Int(seed))
          // Row 2 ties three tokens at 9: a draw among them (all equally likely), never another.
          #expect(got[0] == 1 && got[1] == 3 && [0, 1, 3].contains(got[2]), "T \(T), top-k \(k), top-p \(p): \(got)")
        }
      }
    }
  }

  @Test("every temperature > 0 gives a token of the vocabulary, the largest finite one too")
  func temperatureRange() throws {
    let logits = Tensor(shape: [2, 4], data: [1e30, -1e30, 3, 2, -5, 40, 0, 1])
    for T: Float in [.greatestFiniteMagnitude, 1e30, 1, 0.5, 1e-20, .leastNormalMagnitude] {
      for (k, p) in [(0, Float(1)), (3, 1), (0, 0.9), (2, 0.5)] {
        let got = try sampler(SamplingOptions(temperature: T, topK: k, topP: p, seed: 1), vocab: 4).choose(logits, step: 0)
        #expect(got.allSatisfy { (0..<4).contains($0) }, "T \(T): \(got)")
      }
    }
    // A huge temperature draws nearly uniformly (every token seen), a tiny one only the top.
    var seen = Set<Int32>()
    let flat = Tensor(shape: [1, 4], data: [3, 2, 1, 0])
    for seed: UInt64 in 0..<200 {
      seen.insert(try sampler(SamplingOptions(temperature: 1e30, seed: seed), vocab: 4).choose(flat, step: 0)[0])
    }
    #expect(seen == [0, 1, 2, 3])
  }

  @Test("a top-k of the vocabulary or more keeps every token, allocating nothing by k")
  func topKPastVocabulary() throws {
    let logits = Tensor(shape: [4, 8], data: (0..<32).map { Float(($0 * 37) % 11) / 5 })
    #expect(SamplingOptions(topK: 8).forVocabulary(8).topK == 0)
    #expect(SamplingOptions(topK: Int.max).forVocabulary(8).topK == 0)
    #expect(SamplingOptions(topK: 7).forVocabulary(8).topK == 7)
    for step in 0..<10 {
      let all = try sampler(SamplingOptions(temperature: 0.8, seed: 4), vocab: 8).choose(logits, step: step)
      for k in [8, 1_000_000_000, Int.max] {
        // Directly (the pool is capped at the vocabulary) and as the generator passes it.
        let o = SamplingOptions(temperature: 0.8, topK: k, seed: 4)
        #expect(try sampler(o, vocab: 8).choose(logits, step: step) == all, "top-k \(k)")
        #expect(try sampler(o.forVocabulary(8), vocab: 8).choose(logits, step: step) == all, "top-k \(k)")
      }
    }
  }

  @Test("out-of-range options are refused naming the option")
  func validation() {
    for (o, name) in [
      (SamplingOptions(temperature: -1), "temperature"), (SamplingOptions(topK: -2), "top-k"),
      (SamplingOptions(topP: 0), "top-p"), (SamplingOptions(topP: 1.5), "top-p"),
      (SamplingOptions(temperature: .nan), "temperature"), (SamplingOptions(temperature: .infinity), "temperature"),
      (SamplingOptions(temperature: 1, topP: .nan), "top-p"), (SamplingOptions(temperature: 1, topP: -.infinity), "top-p"),
    ] {
      expectInputError(name) { try o.validate() }
    }
  }
}
