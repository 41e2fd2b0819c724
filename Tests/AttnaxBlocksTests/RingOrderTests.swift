// Ring attention's schedule and accumulation, simulated serially at world size 1. The order
// `ringOwners(rank:size:)`: rank me computes with the shard of rank (me − step) mod C at each
// step, every shard once, and what it holds at step s + 1 is what its predecessor held at step s
// (the shard it just received). The (owner, piece) pairs a rank visits cover every key row once.
// Then every rank of rings of 2-5 runs `accumulateRingShard` on each owner's packed [K | V]
// shard in that order and `ringOutput`; the ranks' outputs, assembled, equal the single-rank
// softmax and the Double reference (zigzag causal self-attention, contiguous masked attention,
// cross-attention with a different key length, lengths shorter than the ring).

import AttnaxFormats
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("Ring attention order")
struct RingOrderTests {
  @Test("rank me visits owners me, me−1, …, me+1 (mod C): each once, own shard first")
  func owners() {
    for c in 1...9 {
      for me in 0..<c {
        let o = ringOwners(rank: me, size: c)
        #expect(o.count == c && Set(o) == Set(0..<c), "C \(c) rank \(me): \(o)")
        #expect(o == (0..<c).map { ((me - $0) % c + c) % c }, "C \(c) rank \(me): \(o)")
        #expect(o.first == me)
      }
    }
  }

  @Test("the shard a rank uses at step s + 1 is the one its predecessor (me − 1) used at step s")
  func shardsTravelForward() {
    for c in 2...9 {
      let o = (0..<c).map { ringOwners(rank: $0, size: c) }
      for me in 0..<c {
        let prev = (me - 1 + c) % c
        for s in 0..<(c - 1) {
          #expect(
            o[me][s + 1] == o[prev][s], "C \(c): rank \(me) step \(s + 1) holds \(o[me][s + 1]), rank \(prev) sent \(o[prev][s])")
        }
      }
    }
  }

  @Test(
    "the (owner, piece) pairs each rank visits cover every key row exactly once",
    arguments: [SequenceLayout.Kind.contiguous, .zigzag])
  func piecesCoverKeys(_ kind: SequenceLayout.Kind) {
    for c in 1...6 {
      for length in [1, 2, c, 2 * c - 1, 2 * c, 17, 30] {
        let kv = SequenceLayout(length: length, parts: c, kind: kind)
        for me in 0..<c {
          let rows = ringOwners(rank: me, size: c).flatMap { owner in kv.pieces(of: owner).flatMap { Array($0) } }
          #expect(rows.sorted() == Array(0..<length), "\(kind) C \(c) L \(length) rank \(me): rows \(rows)")
        }
      }
    }
  }

  /// A ring problem: the global Q, K, V, the layouts, the pipeline and the reference's mask.
  struct RingCase: CustomTestStringConvertible, Sendable {
    let name: String
    let seqQ: Int, seqKV: Int
    let q: SequenceLayout.Kind, kv: SequenceLayout.Kind
    var testDescription: String { name }
  }

  static let cases: [RingCase] = [
    RingCase(name: "causal self-attention, zigzag, uneven", seqQ: 19, seqKV: 19, q: .zigzag, kv: .zigzag),
    RingCase(name: "padding mask, contiguous", seqQ: 14, seqKV: 14, q: .contiguous, kv: .contiguous),
    RingCase(name: "cross-attention, zigzag queries, contiguous keys", seqQ: 11, seqKV: 7, q: .zigzag, kv: .contiguous),
    RingCase(name: "causal, shorter than twice the ring", seqQ: 3, seqKV: 3, q: .zigzag, kv: .zigzag),
  ]

  /// Runs every rank of a ring of `c` serially: each rank's queries against each owner's shard in
  /// ring order; returns the assembled (B, Sq, H·Dh) output.
  static func simulateRing(
    _ p: AttentionProblem, c: Int, q qKind: SequenceLayout.Kind, kv kvKind: SequenceLayout.Kind,
    pipeline: ScorePipeline, blockQ: Int, blockKV: Int, blocked: Bool
  ) -> Tensor {
    let qLayout = SequenceLayout(length: p.seqQ, parts: c, kind: qKind)
    let kvLayout = SequenceLayout(length: p.seqKV, parts: c, kind: kvKind)
    let dh = p.headDim, hd = p.heads * dh, w = p.kvHeads * dh
    let Q = Tensor(shape: [p.batch, p.seqQ, hd], data: p.q)
    let K = Tensor(shape: [p.batch, p.seqKV, w], data: p.k), V = Tensor(shape: [p.batch, p.seqKV, w], data: p.v)
    // Each owner's shard packed as the ring sends it: [K | V], each (B, n, W).
    // A NaN after the shard: never read, and an empty shard still has an address.
    let shards = (0..<c).map { kvLayout.scatter(K, rank: $0).data + kvLayout.scatter(V, rank: $0).data + [.nan] }
    var outputs: [[Float]] = []
    for me in 0..<c {
      let qLocal = qLayout.scatter(Q, rank: me)
      let qPieces = qLayout.pieces(of: me)
      var states = qPieces.map { SoftmaxState(batch: p.batch, heads: p.heads, seqQ: $0.count, headDim: dh) }
      qLocal.data.withUnsafeBufferPointer { qp in
        for owner in ringOwners(rank: me, size: c) {
          shards[owner].withUnsafeBufferPointer { sp in
            let call = AttentionCall(
              batch: p.batch, heads: p.heads, headBase: 0, kvHeadOf: (0..<p.heads).map(p.kvHeadOf),
              headDim: dh, pipeline: pipeline, blockQ: blockQ, blockKV: blockKV, epsilon: blocked ? 1e-10 : 0)
            accumulateRingShard(
              q: qp, qPieces: qPieces, shard: sp.baseAddress!, pieces: kvLayout.pieces(of: owner),
              width: w, call: call, states: &states, progress: nil)
          }
        }
      }
      let y = ringOutput(&states, qPieces: qPieces, batch: p.batch, width: hd, epsilon: blocked ? 1e-10 : 0)
      #expect(y.shape == [p.batch, qLayout.localLength(of: me), hd], "rank \(me) of \(c): output shape \(y.shape)")
      outputs.append(y.data)
    }
    return qLayout.assemble(outputs, batch: p.batch, features: hd)
  }

  @Test("every rank accumulating the shards in ring order reproduces the single-rank result", arguments: cases)
  func ringEqualsSingleRank(_ rc: RingCase) throws {
    let b = 2, heads = 4
    let p = AttentionProblem(
      batch: b, seqQ: rc.seqQ, seqKV: rc.seqKV, heads: heads, kvHeads: 2, headDim: 4, seed: UInt64(rc.seqQ * 31 + rc.seqKV))
    var rng = TestRNG(seed: 5)
    let pad = rng.bits(b * rc.seqKV, p: 0.75)
    let mask = MaskTensor(shape: [b, 1, 1, rc.seqKV], data: pad)
    let causal = rc.q == .zigzag && rc.seqQ == rc.seqKV
    let pipe = try makePipeline(
      specs: causal ? [.causal, .alibi] : [], numHeads: heads, batch: b, mask: causal ? nil : mask,
      rows: rc.seqQ, cols: rc.seqKV)
    let slopes = PositionKernelTests.referenceSlopes(heads)
    let reference =
      causal
      ? naiveSoftmaxAttention(p, bias: { _, h, i, j in -slopes[h] * Double(abs(i - j)) }, allowed: { _, _, i, j in j <= i })
      : naiveSoftmaxAttention(p, allowed: { bb, _, _, j in pad[bb * rc.seqKV + j] == 1 })
    let single = librarySoftmax(p, pipeline: pipe, blockQ: rc.seqQ, blockKV: rc.seqKV, skip: false, epsilon: 0)
    for c in 2...5 {
      for (bq, bk) in [(Int.max, Int.max), (2, 3)] {
        let blocked = bq != Int.max
        let got = Self.simulateRing(p, c: c, q: rc.q, kv: rc.kv, pipeline: pipe, blockQ: bq, blockKV: bk, blocked: blocked)
        expectClose(got, single, atol: 1e-6, rtol: 1e-5, "\(rc.name), C \(c), blocks (\(bq), \(bk)): ring vs single rank")
        expectClose(got, reference, atol: 2e-6, rtol: 1e-5, "\(rc.name), C \(c), blocks (\(bq), \(bk)): ring vs reference")
      }
    }
  }
}
