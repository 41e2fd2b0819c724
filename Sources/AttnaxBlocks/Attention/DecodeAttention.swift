import AttnaxFormats
import CKernels

/// Keys per unit of work of a decode step's attention (see ``accumulateDecodeAttention(q:k:v:geometry:pipeline:state:)``).
let decodeBlockKeys = 64

/// Softmax attention of a decode step — a few query rows (at most ``streamingRows``) against
/// every key of a run — into `state`, all heads at once.
///
/// q: (B, Sq, Hq·Dh) view, k/v: (B, Skv, Hkv·Dh) views. The keys are cut into blocks of
/// ``decodeBlockKeys``, each a unit of work for whichever thread is free: for every KV head, the
/// scores of the query heads that read it (each cached key read once for all of them,
/// ``ax_key_scores``), the shared score pipeline (mods and mask, global indices), the block's own
/// softmax maximum and sum per row, and its P·V (each cached value read once, ``ax_rows_times``).
/// The blocks' partial states are then merged into `state` in block order, so the result does not
/// depend on the threads. A fully masked block needs no special case: its scores are all the
/// float32 minimum, so it weighs e^(fmin − m) = 0 against any real score and counts uniformly
/// when every key is masked, as attnax's fill implies.
///
/// Against the tile loop this reads the KV cache once per KV head instead of once per query head
/// (SmolLM2: 3 query heads per KV head) and splits it over the threads by keys, so 3 KV heads
/// on 2 threads stay balanced.
func accumulateDecodeAttention(q: HeadsView, k: HeadsView, v: HeadsView, geometry g: AttentionGeometry,
                               pipeline: ScorePipeline, state: inout SoftmaxState) {
  guard g.seqKV > 0, g.seqQ > 0 else { return }
  let blocks = (g.seqKV + decodeBlockKeys - 1) / decodeBlockKeys
  let per = state.storage.count  // one partial state [o | m | l] per block, the state's layout
  let partials = UnsafeMutablePointer<Float>.allocate(capacity: blocks * per)
  defer { partials.deallocate() }
  let groups = KVGroups(kvHeadOf: g.kvHeadOf)
  let seqQ = state.seqQ, nO = state.outputCount, nS = state.statCount
  let work = Double(g.batch * g.seqQ * g.heads) * Double(g.seqKV) * Double(q.headDim)
  let body = { (u: Int) in
    let block = DecodeBlock(q: q, k: k, v: v, geometry: g, pipeline: pipeline, groups: groups, seqQ: seqQ,
                            keys: (u * decodeBlockKeys)..<min(g.seqKV, (u + 1) * decodeBlockKeys))
    let out = partials + u * per
    block.run(o: out, m: out + nO, l: out + nO + nS)
  }
  if BLAS.threads > 1 && blocks > 1 && work > 2e5 {
    RowParallel.concurrent(blocks, body)
  } else {
    for u in 0..<blocks { body(u) }
  }
  for u in 0..<blocks { state.absorb(partials + u * per) }
}

/// Runs of consecutive local query heads reading the same local KV head.
struct KVGroups {
  /// (KV head, query heads) in head order.
  let runs: [(kvHead: Int, heads: Range<Int>)]
  /// The most query heads of a run.
  let widest: Int

  init(kvHeadOf: [Int]) {
    var runs: [(kvHead: Int, heads: Range<Int>)] = []
    for (h, kv) in kvHeadOf.enumerated() {
      if let last = runs.last, last.kvHead == kv, last.heads.upperBound == h {
        runs[runs.count - 1].heads = last.heads.lowerBound..<(h + 1)
      } else {
        runs.append((kv, h..<(h + 1)))
      }
    }
    self.runs = runs
    widest = runs.map(\.heads.count).max() ?? 0
  }
}

/// One block of keys of a decode step: its partial softmax state for every query row and head.
struct DecodeBlock {
  let q: HeadsView, k: HeadsView, v: HeadsView
  let geometry: AttentionGeometry
  let pipeline: ScorePipeline
  let groups: KVGroups
  /// Query rows of the state (its `m`/`l` stride).
  let seqQ: Int
  /// Local key rows of the block.
  let keys: Range<Int>

  /// Writes the block's o (B, Sq, Hq·Dh), m and l (B, Hq, Sq): the unnormalised output, maximum
  /// and sum of every row over the block's keys alone.
  func run(o: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, l: UnsafeMutablePointer<Float>) {
    let g = geometry, dh = q.headDim, nk = keys.count, hd = g.heads * dh
    let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(1, groups.widest * nk))
    defer { scores.deallocate() }
    o.update(repeating: 0, count: g.batch * seqQ * hd)
    let scale = 1 / Float(dh).squareRoot()
    let kvRange = (g.kvStart + keys.lowerBound)..<(g.kvStart + keys.upperBound)
    for b in 0..<g.batch {
      for r in 0..<g.seqQ {
        let qRow = (g.qStart + r)..<(g.qStart + r + 1)
        for run in groups.runs {
          let h0 = run.heads.lowerBound, rows = run.heads.count
          ax_key_scores(q.at(b: b, row: r, head: h0), rows, dh, dh, k.at(b: b, row: keys.lowerBound, head: run.kvHead),
                        k.rowStride, nk, scores, nk)
          scaleInPlace(scores, rows * nk, by: scale)
          for (i, h) in run.heads.enumerated() {
            let row = scores + i * nk
            pipeline.apply(row, ld: nk, b: b, hGlobal: g.headBase + h, q: qRow, kv: kvRange)
            let stat = (b * g.heads + h) * seqQ + r
            m[stat] = rowMax(row, nk, floor: maskedScore)
            l[stat] = expShiftSum(row, nk, shift: m[stat])  // row becomes exp(s − m)
          }
          ax_rows_times(scores, rows, nk, nk, v.at(b: b, row: keys.lowerBound, head: run.kvHead), v.rowStride, dh,
                        o + (b * seqQ + r) * hd + h0 * dh, dh)
        }
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
