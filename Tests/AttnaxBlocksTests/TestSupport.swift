// Small helpers shared by the kernel, golden and input tests: a call wrapper around the internal
// softmax kernel, and plain Double-precision reference implementations of attnax's attention
// formulas. The seeded generator (TestRNG) and the tolerance expectations (expectClose, on
// AttnaxFormats' Tolerance rule) are in _TestSupport.

import AttnaxFormats
import Foundation
import Testing
import _TestSupport

@testable import AttnaxBlocks

// MARK: - Attention problems

/// Q (B, Sq, H·Dh), K and V (B, Skv, Hkv·Dh), row-major, as the attention kernels read them.
struct AttentionProblem {
  let batch: Int, seqQ: Int, seqKV: Int, heads: Int, kvHeads: Int, headDim: Int
  var q: [Float], k: [Float], v: [Float]

  init(batch: Int, seqQ: Int, seqKV: Int, heads: Int, kvHeads: Int, headDim: Int, seed: UInt64, scale: Float = 1) {
    self.batch = batch; self.seqQ = seqQ; self.seqKV = seqKV
    self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
    var rng = TestRNG(seed: seed)
    q = rng.floats(batch * seqQ * heads * headDim, scale: scale)
    k = rng.floats(batch * seqKV * kvHeads * headDim, scale: scale)
    v = rng.floats(batch * seqKV * kvHeads * headDim, scale: scale)
  }

  /// attnax's GQA mapping (jnp.repeat of KV heads): query head h reads KV head h / (H / Hkv).
  func kvHeadOf(_ h: Int) -> Int { h / (heads / kvHeads) }

  func qAt(_ b: Int, _ i: Int, _ h: Int, _ d: Int) -> Double {
    Double(q[((b * seqQ + i) * heads + h) * headDim + d])
  }
  func kAt(_ b: Int, _ j: Int, _ g: Int, _ d: Int) -> Double {
    Double(k[((b * seqKV + j) * kvHeads + g) * headDim + d])
  }
  func vAt(_ b: Int, _ j: Int, _ g: Int, _ d: Int) -> Double {
    Double(v[((b * seqKV + j) * kvHeads + g) * headDim + d])
  }

  /// Geometry of the whole problem on one rank (all heads local).
  func geometry(qStart: Int = 0) -> AttentionGeometry {
    AttentionGeometry(
      batch: batch, seqQ: seqQ, seqKV: seqKV, qStart: qStart, kvStart: 0, heads: heads, headBase: 0,
      kvHeadOf: (0..<heads).map(kvHeadOf))
  }

  /// Views over the three arrays, for the kernels.
  func withViews<R>(_ body: (HeadsView, HeadsView, HeadsView) throws -> R) rethrows -> R {
    try q.withUnsafeBufferPointer { qp in
      try k.withUnsafeBufferPointer { kp in
        try v.withUnsafeBufferPointer { vp in
          let dh = headDim
          let qv = HeadsView(base: qp.baseAddress!, batchStride: seqQ * heads * dh, rowStride: heads * dh, headDim: dh)
          let kv = HeadsView(base: kp.baseAddress!, batchStride: seqKV * kvHeads * dh, rowStride: kvHeads * dh, headDim: dh)
          let vv = HeadsView(base: vp.baseAddress!, batchStride: seqKV * kvHeads * dh, rowStride: kvHeads * dh, headDim: dh)
          return try body(qv, kv, vv)
        }
      }
    }
  }
}

/// A score pipeline for a problem with `numHeads` global heads; `mask` is broadcast and checked.
func makePipeline(
  window: Int? = nil, specs: [ScoreModSpec] = [], numHeads: Int, batch: Int, mask: MaskTensor? = nil,
  rows: Int, cols: Int, rowOrigin: Int = 0, tensors: [String: Tensor] = [:]
) throws -> ScorePipeline {
  let m = try mask.map {
    try Broadcast4(
      name: "mask", data: $0.data, shape: $0.shape, batch: batch, heads: numHeads, rows: rows, cols: cols, rowOrigin: rowOrigin)
  }
  return try ScorePipeline(
    window: window, specs: specs, numHeads: numHeads, batch: batch, mask: m, biasRows: rows, biasRowOrigin: rowOrigin,
    totalKV: cols,
    lookup: { name in
      guard let t = tensors[name] else { throw AttnaxError.input(name: name, message: "missing in test") }
      return t
    })
}

/// Runs the library's tiled softmax kernel over the whole problem and normalises with `epsilon`.
func librarySoftmax(
  _ p: AttentionProblem, pipeline: ScorePipeline, blockQ: Int, blockKV: Int, skip: Bool, epsilon: Float,
  geometry: AttentionGeometry? = nil
) -> Tensor {
  let g = geometry ?? p.geometry()
  var state = SoftmaxState(batch: g.batch, heads: g.heads, seqQ: g.seqQ, headDim: p.headDim)
  p.withViews { qv, kv, vv in
    accumulateSoftmaxAttention(
      q: qv, k: kv, v: vv, geometry: g, pipeline: pipeline, blockQ: blockQ, blockKV: blockKV,
      skipMaskedTiles: skip, state: &state)
  }
  return state.finalize(epsilon: epsilon)
}

/// Plain triple-loop softmax attention in Double with attnax's semantics: scores
/// q·k/√Dh + bias; disallowed pairs get the float32 minimum, so a row with no allowed key
/// attends uniformly to every key. Output (B, Sq, H·Dh) for the query heads in `heads`.
///
/// `allowed` and `bias` receive (batch, global head, query index, key index).
func naiveSoftmaxAttention(
  _ p: AttentionProblem, heads: Range<Int>? = nil,
  bias: (Int, Int, Int, Int) -> Double = { _, _, _, _ in 0 },
  allowed: (Int, Int, Int, Int) -> Bool = { _, _, _, _ in true }
) -> Tensor {
  let hs = heads ?? 0..<p.heads
  let dh = p.headDim
  var out = [Float](repeating: 0, count: p.batch * p.seqQ * hs.count * dh)
  let scale = 1 / Double(dh).squareRoot()
  for b in 0..<p.batch {
    for (lh, h) in hs.enumerated() {
      let g = p.kvHeadOf(h)
      for i in 0..<p.seqQ {
        var s = [Double](repeating: 0, count: p.seqKV)
        var ok = [Bool](repeating: false, count: p.seqKV)
        for j in 0..<p.seqKV {
          var dot = 0.0
          for d in 0..<dh { dot += p.qAt(b, i, h, d) * p.kAt(b, j, g, d) }
          s[j] = dot * scale + bias(b, h, i, j)
          ok[j] = allowed(b, h, i, j)
        }
        var w = [Double](repeating: 0, count: p.seqKV)
        if ok.contains(true) {
          let m = (0..<p.seqKV).filter { ok[$0] }.map { s[$0] }.max()!
          for j in 0..<p.seqKV where ok[j] { w[j] = exp(s[j] - m) }
        } else {
          for j in 0..<p.seqKV { w[j] = 1 }
        }
        let total = w.reduce(0, +)
        for d in 0..<dh {
          var acc = 0.0
          for j in 0..<p.seqKV { acc += w[j] * p.vAt(b, j, g, d) }
          out[((b * p.seqQ + i) * hs.count + lh) * dh + d] = Float(acc / total)
        }
      }
    }
  }
  return Tensor(shape: [p.batch, p.seqQ, hs.count * dh], data: out)
}

/// φ(x) = elu(x) + 1 in Double.
func phiDouble(_ x: Double) -> Double { x > 0 ? x + 1 : exp(x) }

/// attnax causal linear attention written directly from its definition (no chunks):
/// y_i = Σ_{j≤i} (φq_i·φk_j) v_j / (Σ_{j≤i} φq_i·φk_j + 1e-6), with φk_j and v_j zeroed for
/// keys `keyAllowed(b, h, j)` refuses.
func naiveLinearAttention(_ p: AttentionProblem, keyAllowed: (Int, Int, Int) -> Bool = { _, _, _ in true }) -> Tensor {
  precondition(p.seqQ == p.seqKV)
  let dh = p.headDim, s = p.seqQ
  var out = [Float](repeating: 0, count: p.batch * s * p.heads * dh)
  for b in 0..<p.batch {
    for h in 0..<p.heads {
      let g = p.kvHeadOf(h)
      for i in 0..<s {
        var num = [Double](repeating: 0, count: dh)
        var den = 0.0
        for j in 0...i {
          let keep = keyAllowed(b, h, j)
          var a = 0.0
          for d in 0..<dh { a += phiDouble(p.qAt(b, i, h, d)) * (keep ? phiDouble(p.kAt(b, j, g, d)) : 0) }
          den += a
          for d in 0..<dh { num[d] += a * (keep ? p.vAt(b, j, g, d) : 0) }
        }
        for d in 0..<dh { out[((b * s + i) * p.heads + h) * dh + d] = Float(num[d] / (den + 1e-6)) }
      }
    }
  }
  return Tensor(shape: [p.batch, s, p.heads * dh], data: out)
}

/// attnax `lite_attention` from its definition: gate_t = (q_t ⊙ k_t')·w + bias with
/// t' = t when seq_q == seq_kv else 0; softmax over t; times mask(b, h, t, key 0); times v_t'.
func naiveLiteAttention(
  _ p: AttentionProblem, gate: [Double], gateBias: Double,
  maskAt: ((Int, Int, Int, Int) -> Bool)? = nil
) -> Tensor {
  let dh = p.headDim, sq = p.seqQ
  let same = p.seqQ == p.seqKV
  var out = [Float](repeating: 0, count: p.batch * sq * p.heads * dh)
  for b in 0..<p.batch {
    for h in 0..<p.heads {
      let g = p.kvHeadOf(h)
      var logits = [Double](repeating: 0, count: sq)
      for t in 0..<sq {
        let kt = same ? t : 0
        var acc = gateBias
        for d in 0..<dh { acc += p.qAt(b, t, h, d) * p.kAt(b, kt, g, d) * gate[d] }
        logits[t] = acc
      }
      let m = logits.max()!
      let e = logits.map { exp($0 - m) }
      let total = e.reduce(0, +)
      for t in 0..<sq {
        var w = e[t] / total
        if let maskAt, !maskAt(b, h, t, 0) { w = 0 }
        let vt = same ? t : 0
        for d in 0..<dh { out[((b * sq + t) * p.heads + h) * dh + d] = Float(w * p.vAt(b, vt, g, d)) }
      }
    }
  }
  return Tensor(shape: [p.batch, sq, p.heads * dh], data: out)
}
