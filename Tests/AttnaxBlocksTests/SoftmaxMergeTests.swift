// The online-softmax merge of SoftmaxState (what `merge(over:)` does after its allgather), at
// world size 1 through `merge(gathered:parts:)`: the rule on hand-made states (including the
// float32-min states of fully masked rows), and on real partial states — the keys of random
// attention problems split into 2-4 disjoint sets (each a union of runs, some empty), each set
// run through the library's tiled softmax into its own state, the states merged — compared with
// one state over all keys and with the Double reference. Scenarios include rows with no allowed
// key (uniform attention over every key) and a set every query sees only masked.

import AttnaxFormats
import Foundation
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("Softmax state merge")
struct SoftmaxMergeTests {
  /// A state of one row (batch 1, 1 head, seq 1) with the given m, l and o.
  static func state(m: Float, l: Float, o: [Float]) -> SoftmaxState {
    var s = SoftmaxState(batch: 1, heads: 1, seqQ: 1, headDim: o.count)
    s.storage = o + [m, l]
    return s
  }

  static func merged(_ parts: [SoftmaxState]) -> SoftmaxState {
    var out = SoftmaxState(batch: parts[0].batch, heads: parts[0].heads, seqQ: parts[0].seqQ, headDim: parts[0].headDim)
    out.storage = [Float](repeating: .nan, count: out.storage.count)  // the merge must not read its own contents
    out.merge(gathered: parts.flatMap(\.storage), parts: parts.count)
    return out
  }

  @Test("the rule by hand: M = max m, L = Σ l·e^(m−M), O = Σ o·e^(m−M)")
  func rule() {
    let a = Self.state(m: 1, l: 2, o: [3, -1]), b = Self.state(m: 3, l: 1, o: [5, 0.5]), c = Self.state(m: 2.5, l: 4, o: [-2, 1])
    let r = Self.merged([a, b, c])
    let ea = exp(-2.0), ec = exp(-0.5)
    expectClose(r.m, [3], atol: 0, rtol: 0, "m")
    expectClose(r.l, [Float(2 * ea + 1 + 4 * ec)], atol: 1e-6, rtol: 1e-6, "l")
    expectClose(r.o, [Float(3 * ea + 5 - 2 * ec), Float(-ea + 0.5 + ec)], atol: 1e-6, rtol: 1e-6, "o")
    // Order does not matter.
    let r2 = Self.merged([c, a, b])
    expectClose(r2.o, r.o, atol: 1e-6, rtol: 1e-6, "o, other order")
    expectClose(r2.l, r.l, atol: 1e-6, rtol: 1e-6, "l, other order")
  }

  @Test(
    "float32-min states: masked everywhere adds up (uniform attention); masked in one part only is ignored; an empty part adds nothing"
  )
  func maskedRule() {
    // Both parts saw only masked keys (2 and 3 of them): uniform over all 5.
    let u = Self.merged([Self.state(m: maskedScore, l: 2, o: [4, 2]), Self.state(m: maskedScore, l: 3, o: [1, 8])])
    #expect(u.m == [maskedScore])
    expectClose(u.l, [5], atol: 0, rtol: 0, "l, all masked")
    expectClose(u.o, [5, 10], atol: 0, rtol: 0, "o, all masked")
    // One part has a real key: the masked part weighs e^(fmin − m) = 0.
    let one = Self.merged([Self.state(m: maskedScore, l: 4, o: [7, 7]), Self.state(m: -0.5, l: 1.5, o: [2, -3])])
    #expect(one.m == [-0.5])
    expectClose(one.l, [1.5], atol: 0, rtol: 0, "l, one part masked")
    expectClose(one.o, [2, -3], atol: 0, rtol: 0, "o, one part masked")
    // An empty part (the initial state: m = fmin, l = 0, o = 0) changes neither case.
    let empty = SoftmaxState(batch: 1, heads: 1, seqQ: 1, headDim: 2)
    let u2 = Self.merged([empty, Self.state(m: maskedScore, l: 2, o: [4, 2]), empty])
    expectClose(u2.l, [2], atol: 0, rtol: 0, "l, masked + empty")
    expectClose(u2.o, [4, 2], atol: 0, rtol: 0, "o, masked + empty")
    let r2 = Self.merged([Self.state(m: 0.25, l: 1, o: [1, 1]), empty])
    expectClose(r2.l + r2.o, [1, 1, 1], atol: 0, rtol: 0, "real + empty")
  }

  // MARK: - Partial states of real problems

  /// A scenario: a masking pattern and the number of key sets; `setup` builds the problem, its
  /// pipeline, the pairs it allows and the sets.
  struct Scenario: CustomTestStringConvertible, Sendable {
    enum Kind: String, Sendable, CaseIterable {
      case causalPadding = "causal + padding, random runs"
      case maskedRows = "random mask with fully masked rows"
      case maskedSet = "one set masked for every query"
      case emptySet = "one set empty, sliding window"
    }
    let kind: Kind
    let parts: Int
    var seed: UInt64 { UInt64(10 * parts) + UInt64(Kind.allCases.firstIndex(of: kind)!) }
    /// Global row of query 0 (queries after the keys' start, so causal masks cut through the sets).
    var qStart: Int { kind == .causalPadding || kind == .emptySet ? 6 : 0 }
    var testDescription: String { "\(kind.rawValue), \(parts) sets" }
  }

  static let scenarios: [Scenario] = {
    var out: [Scenario] = []
    for n in 2...4 { for k in Scenario.Kind.allCases { out.append(Scenario(kind: k, parts: n)) } }
    return out
  }()

  /// Splits 0..<n into runs at random cuts and deals them to `parts` sets; set 0 gets the first
  /// run, every other set at least one run when there are enough.
  static func split(_ n: Int, parts: Int, rng: inout TestRNG) -> [[Range<Int>]] {
    var cuts = Set<Int>()
    while cuts.count < min(n - 1, 2 * parts) { cuts.insert(Int(rng.next() % UInt64(n - 1)) + 1) }
    let bounds = [0] + cuts.sorted() + [n]
    let runs = zip(bounds, bounds.dropFirst()).map { $0..<$1 }
    var sets = [[Range<Int>]](repeating: [], count: parts)
    for (i, r) in runs.enumerated() { sets[i < parts ? i : Int(rng.next() % UInt64(parts))].append(r) }
    return sets
  }

  /// (problem, pipeline, allowed, key sets) of a scenario.
  static func setup(
    _ s: Scenario
  ) throws
    -> (AttentionProblem, ScorePipeline, (Int, Int, Int, Int) -> Bool, [[Range<Int>]])
  {
    let b = 2, heads = 4, kvHeads = 2, sq = 7, skv = 13
    let p = AttentionProblem(batch: b, seqQ: sq, seqKV: skv, heads: heads, kvHeads: kvHeads, headDim: 4, seed: s.seed)
    var rng = TestRNG(seed: s.seed * 7919)
    var sets = split(skv, parts: s.parts, rng: &rng)
    switch s.kind {
    case .causalPadding:
      // Queries sit at global rows 6..<13 so causal masking cuts through the key sets.
      var pad = rng.bits(b * skv, p: 0.8)
      pad[0] = 0; pad[skv] = 0; pad[skv + 1] = 0
      let mask = MaskTensor(shape: [b, 1, 1, skv], data: pad)
      let pipe = try makePipeline(specs: [.causal], numHeads: heads, batch: b, mask: mask, rows: sq, cols: skv, rowOrigin: 6)
      return (p, pipe, { bb, _, i, j in j <= i + 6 && pad[bb * skv + j] == 1 }, sets)
    case .maskedRows:
      var bits = rng.bits(b * heads * sq * skv, p: 0.6)
      for h in 0..<heads {
        for j in 0..<skv { bits[((0 * heads + h) * sq + 2) * skv + j] = 0; bits[((1 * heads + h) * sq + 5) * skv + j] = 0 }
      }
      for j in 0..<skv { bits[((1 * heads + 3) * sq + 0) * skv + j] = 0 }
      let mask = MaskTensor(shape: [b, heads, sq, skv], data: bits)
      let pipe = try makePipeline(numHeads: heads, batch: b, mask: mask, rows: sq, cols: skv)
      return (p, pipe, { bb, h, i, j in bits[((bb * heads + h) * sq + i) * skv + j] == 1 }, sets)
    case .maskedSet:
      // Padding masks every key of the last set; row 3 of batch 1 sees no key at all.
      var bits = [UInt8](repeating: 1, count: b * sq * skv)
      for bb in 0..<b { for i in 0..<sq { for r in sets[s.parts - 1] { for j in r { bits[(bb * sq + i) * skv + j] = 0 } } } }
      for j in 0..<skv { bits[(1 * sq + 3) * skv + j] = 0 }
      let mask = MaskTensor(shape: [b, 1, sq, skv], data: bits)
      let pipe = try makePipeline(numHeads: heads, batch: b, mask: mask, rows: sq, cols: skv)
      return (p, pipe, { bb, _, i, j in bits[(bb * sq + i) * skv + j] == 1 }, sets)
    case .emptySet:
      // The last set holds no key (a rank whose shard is empty).
      sets[0] += sets[s.parts - 1]
      sets[0].sort { $0.lowerBound < $1.lowerBound }
      sets[s.parts - 1] = []
      let pipe = try makePipeline(window: 4, numHeads: heads, batch: b, rows: sq, cols: skv, rowOrigin: 6)
      return (p, pipe, { _, _, i, j in j <= i + 6 && i + 6 - j < 4 }, sets)
    }
  }

  /// One state over the runs of one key set (global key indices), as a rank holding them computes it.
  static func partialState(
    _ p: AttentionProblem, _ pipe: ScorePipeline, runs: [Range<Int>], qStart: Int,
    blockQ: Int, blockKV: Int, skip: Bool
  ) -> SoftmaxState {
    var state = SoftmaxState(batch: p.batch, heads: p.heads, seqQ: p.seqQ, headDim: p.headDim)
    p.withViews { qv, kv, vv in
      for r in runs {
        let k = HeadsView(
          base: kv.base + r.lowerBound * kv.rowStride, batchStride: kv.batchStride, rowStride: kv.rowStride, headDim: kv.headDim)
        let v = HeadsView(
          base: vv.base + r.lowerBound * vv.rowStride, batchStride: vv.batchStride, rowStride: vv.rowStride, headDim: vv.headDim)
        let g = AttentionGeometry(
          batch: p.batch, seqQ: p.seqQ, seqKV: r.count, qStart: qStart, kvStart: r.lowerBound,
          heads: p.heads, headBase: 0, kvHeadOf: (0..<p.heads).map(p.kvHeadOf))
        accumulateSoftmaxAttention(
          q: qv, k: k, v: v, geometry: g, pipeline: pipe, blockQ: blockQ, blockKV: blockKV,
          skipMaskedTiles: skip, state: &state)
      }
    }
    return state
  }

  @Test(
    "partial states over disjoint key sets merge to one state over all keys and to the Double reference",
    arguments: scenarios)
  func mergeEqualsWhole(_ s: Scenario) throws {
    let (p, pipe, allowed, sets) = try Self.setup(s)
    let covered = sets.flatMap { $0.flatMap { Array($0) } }.sorted()
    #expect(covered == Array(0..<p.seqKV), "the key sets \(sets) must partition the keys")
    let qStart = s.qStart
    let reference = naiveSoftmaxAttention(p, allowed: allowed)
    let whole = librarySoftmax(
      p, pipeline: pipe, blockQ: p.seqQ, blockKV: p.seqKV, skip: false, epsilon: 0,
      geometry: p.geometry(qStart: qStart))
    for (bq, bk, skip) in [(Int.max, Int.max, false), (3, 2, false), (2, 3, true), (1, 1, true)] {
      let states = sets.map { Self.partialState(p, pipe, runs: $0, qStart: qStart, blockQ: bq, blockKV: bk, skip: skip) }
      let blocked = bq != Int.max
      let got = Self.merged(states).finalize(epsilon: blocked ? 1e-10 : 0)
      let what = "\(s.testDescription), blocks (\(bq), \(bk)), skip \(skip)"
      expectClose(got, whole, atol: 1e-6, rtol: 1e-5, "\(what): merged vs one state")
      expectClose(got, reference, atol: 2e-6, rtol: 1e-5, "\(what): merged vs reference")
    }
  }

  @Test("a row with no allowed key in any set is the mean of V over every key after the merge")
  func fullyMaskedRowIsUniform() throws {
    let s = Scenario(kind: .maskedRows, parts: 3)
    let (p, pipe, _, sets) = try Self.setup(s)
    let states = sets.map { Self.partialState(p, pipe, runs: $0, qStart: 0, blockQ: 2, blockKV: 2, skip: true) }
    let got = Self.merged(states).finalize(epsilon: 1e-10)
    let dh = p.headDim
    // (batch, head, row) triples masked everywhere by setup.
    for (b, h, i) in [(0, 0, 2), (0, 3, 2), (1, 1, 5), (1, 3, 0)] {
      for d in 0..<dh {
        let mean = (0..<p.seqKV).map { p.vAt(b, $0, p.kvHeadOf(h), d) }.reduce(0, +) / Double(p.seqKV)
        let y = got.data[((b * p.seqQ + i) * p.heads + h) * dh + d]
        #expect(abs(Double(y) - mean) < 1e-5, "batch \(b) head \(h) row \(i) dim \(d): \(y) vs mean \(mean)")
      }
    }
  }
}
