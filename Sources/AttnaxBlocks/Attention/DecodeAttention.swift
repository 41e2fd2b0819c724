import AttnaxFormats
import CKernels

/// Keys per unit of work of a decode step's attention (see ``accumulateDecodeAttention(q:k:v:geometry:pipeline:state:)``).
let decodeBlockKeys = 64

/// Softmax attention of a decode step — a few query rows (at most ``streamingRows``) against
/// every key of a run — into `state`, all heads at once.
///
/// q: (B, Sq, Hq·Dh) view, k/v: (B, Skv, Hkv·Dh) views. The keys are cut into blocks of
/// ``decodeBlockKeys``; the threads take contiguous ranges of blocks (even shares of the keys),
/// and each block gives, for
/// every query head, its scores (``ax_key_scores``: the cached rows read once, in order, whole,
/// for all heads), the shared score pipeline (mods and mask, global indices), the block's own
/// softmax maximum and sum, and its P·V (``ax_value_sums``, the rows read the same way), after
/// the block was read once in order (``DecodeBlock/touch(keys:)``: the cache comes from memory,
/// 27 MB per SmolLM2 token at 544 cached tokens). The blocks' partial states are then merged into `state` in
/// block order, so the result does not depend on the threads. A fully masked block needs no special
/// case: its scores are all the float32 minimum, so it weighs e^(fmin − m) = 0 against any real
/// score and counts uniformly when every key is masked, as attnax's fill implies.
///
/// Against the tile loop this reads each cached key and value once for all query heads (not once
/// per query head, strided) and splits the keys over the threads, so 3 KV heads on 2 threads stay
/// balanced.
func accumulateDecodeAttention(
  q: HeadsView, k: HeadsView, v: HeadsView, geometry g: AttentionGeometry,
  pipeline: ScorePipeline, state: inout SoftmaxState
) {
  guard g.seqKV > 0, g.seqQ > 0 else { return }
  let blocks = (g.seqKV + decodeBlockKeys - 1) / decodeBlockKeys
  let per = state.storage.count  // one partial state [o | m | l] per block, the state's layout
  let partials = UnsafeMutablePointer<Float>.allocate(capacity: blocks * per)
  defer { partials.deallocate() }
  let seqQ = state.seqQ, nO = state.outputCount, nS = state.statCount
  let work = Double(g.batch * g.seqQ * g.heads) * Double(g.seqKV) * Double(q.headDim)
  g.kvHeadOf.withUnsafeBufferPointer { kvOf in
    let block = DecodeBlock(q: q, k: k, v: v, geometry: g, pipeline: pipeline, kvOf: kvOf.baseAddress!, seqQ: seqQ)
    // Each thread an even share of the keys, its ends moved to the nearest block boundary.
    RowParallel.forEach(rows: g.seqKV, work: work, minRows: decodeBlockKeys, threshold: attentionForkWork) { share in
      func boundary(_ key: Int) -> Int { key == g.seqKV ? blocks : (key + decodeBlockKeys / 2) / decodeBlockKeys }
      let range = boundary(share.lowerBound)..<boundary(share.upperBound)
      // The scores of one block, every head: this thread's scratch for all its blocks.
      let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(1, g.heads * decodeBlockKeys))
      defer { scores.deallocate() }
      for u in range {
        block.touch(keys: block.keys(u))
        let out = partials + u * per
        block.run(keys: block.keys(u), o: out, m: out + nO, l: out + nO + nS, scores: scores)
      }
    }
  }
  for u in 0..<blocks { state.absorb(partials + u * per) }
}

/// The blocks of keys of a decode step: each block's partial softmax state for every query row and head.
struct DecodeBlock {
  let q: HeadsView, k: HeadsView, v: HeadsView
  let geometry: AttentionGeometry
  let pipeline: ScorePipeline
  /// The local KV head of every local query head (`geometry.kvHeadOf`, as C longs).
  let kvOf: UnsafePointer<Int>
  /// Query rows of the state (its `m`/`l` stride).
  let seqQ: Int

  /// Local key rows of block `u`.
  func keys(_ u: Int) -> Range<Int> { (u * decodeBlockKeys)..<min(geometry.seqKV, (u + 1) * decodeBlockKeys) }

  /// Reads the cached rows of `keys` (keys and values, every batch row) in order with full-width
  /// loads, which the hardware prefetchers follow at the streaming bandwidth: the block's kernels
  /// then find them in L2. Measured on SmolLM2's cache behind its weights (1 thread, 544 keys):
  /// 2.9 ms per token without, 1.9 ms with; software prefetch instructions (next block, or rows
  /// 8-32 ahead inside the kernels) gained 0-10%.
  func touch(keys: Range<Int>) {
    for b in 0..<geometry.batch {
      _ = ax_stream_sum(k.at(b: b, row: keys.lowerBound, head: 0), keys.count * k.rowStride)
      _ = ax_stream_sum(v.at(b: b, row: keys.lowerBound, head: 0), keys.count * v.rowStride)
    }
  }

  /// Writes the block's o (B, Sq, Hq·Dh), m and l (B, Hq, Sq): the unnormalised output, maximum
  /// and sum of every row over the block's keys alone. `scores`: scratch of heads × keys.count floats.
  func run(
    keys: Range<Int>, o: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, l: UnsafeMutablePointer<Float>,
    scores: UnsafeMutablePointer<Float>
  ) {
    let g = geometry, dh = q.headDim, nk = keys.count, heads = g.heads, hd = heads * dh
    o.update(repeating: 0, count: g.batch * seqQ * hd)
    let scale = 1 / Float(dh).squareRoot()
    let kvRange = (g.kvStart + keys.lowerBound)..<(g.kvStart + keys.upperBound)
    for b in 0..<g.batch {
      for r in 0..<g.seqQ {
        let qRow = (g.qStart + r)..<(g.qStart + r + 1)
        ax_key_scores(
          q.at(b: b, row: r, head: 0), heads, dh, dh, kvOf, k.at(b: b, row: keys.lowerBound, head: 0),
          k.rowStride, nk, scores, nk)
        scaleInPlace(scores, heads * nk, by: scale)
        for h in 0..<heads {
          let row = scores + h * nk
          pipeline.apply(row, ld: nk, b: b, hGlobal: g.headBase + h, q: qRow, kv: kvRange)
          let stat = (b * heads + h) * seqQ + r
          m[stat] = rowMax(row, nk, floor: maskedScore)
          l[stat] = expShiftSum(row, nk, shift: m[stat])  // row becomes exp(s − m)
        }
        ax_value_sums(
          scores, heads, nk, nk, kvOf, v.at(b: b, row: keys.lowerBound, head: 0), v.rowStride, dh,
          o + (b * seqQ + r) * hd, dh)
      }
    }
  }
}

extension SoftmaxState {
  /// Merges a partial state of this state's layout (`[o | m | l]` at `partial`, over keys this state
  /// has not seen) by the online-softmax rule: M = max(m, m'), L = l·e^(m−M) + l'·e^(m'−M),
  /// O = o·e^(m−M) + o'·e^(m'−M).
  mutating func absorb(_ partial: UnsafePointer<Float>) {
    let nO = outputCount, nS = statCount, hd = heads * headDim
    let (batch, heads, seqQ, headDim) = (self.batch, self.heads, self.seqQ, self.headDim)
    withBuffers { out in
      for b in 0..<batch {
        for h in 0..<heads {
          for i in 0..<seqQ {
            let s = (b * heads + h) * seqQ + i
            let mp = partial[nO + s], lp = partial[nO + nS + s]
            let mNew = max(out.m[s], mp)
            let alpha = expShiftScalar(out.m[s] - mNew), beta = expShiftScalar(mp - mNew)
            out.l[s] = out.l[s] * alpha + lp * beta
            out.m[s] = mNew
            let row = (b * seqQ + i) * hd + h * headDim
            for d in 0..<headDim { out.o[row + d] = out.o[row + d] * alpha + partial[row + d] * beta }
          }
        }
      }
    }
  }
}
