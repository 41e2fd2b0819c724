import AttnaxDist
import AttnaxFormats
import CKernels

/// Accumulates softmax attention of all queries against one contiguous run of keys into `state`.
///
/// q: (B, Sq, Hq·Dh) view, k/v: (B, Skv, Hkv·Dh) views. Tiles are `blockQ` × `blockKV`;
/// each tile runs the shared ``ScorePipeline`` and the online-softmax update, so memory is
/// O(block²) per tile and never Sq × Skv unless the block covers it (standard attention).
/// With several BLAS threads the (batch, head, query block) units run in parallel, claimed one by
/// one by whichever thread is free (the costliest, the last query blocks under a causal mask,
/// first), each calling BLAS single-threaded; a unit's result does not depend on the thread.
/// `progress` (ring transfers to poke) keeps them on this thread. A decode step (at most
/// ``streamingRows`` query rows, no `progress`) takes ``accumulateDecodeAttention(q:k:v:geometry:pipeline:state:)``.
func accumulateSoftmaxAttention(
  q: HeadsView, k: HeadsView, v: HeadsView, geometry g: AttentionGeometry, pipeline: ScorePipeline,
  blockQ: Int, blockKV: Int, skipMaskedTiles: Bool, state: inout SoftmaxState,
  progress: (() -> Void)? = nil
) {
  if g.seqQ <= streamingRows && progress == nil {
    // A decode step: all heads per block of keys, the cache read once per KV head.
    accumulateDecodeAttention(q: q, k: k, v: v, geometry: g, pipeline: pipeline, state: &state)
    return
  }
  let bq = min(blockQ, g.seqQ), bk = min(blockKV, g.seqKV)
  guard bq > 0, bk > 0 else { return }
  let items = g.batch * g.heads
  let workers = min(BLAS.threads, items)
  let work = Double(g.seqQ) * Double(g.seqKV) * Double(q.headDim) * Double(items)
  let parallel = workers > 1 && work > attentionForkWork && progress == nil
  let seqQ = state.seqQ
  state.withBuffers { buffers in
    let tiles = SoftmaxTiles(
      q: q, k: k, v: v, geometry: g, pipeline: pipeline, blockQ: bq, blockKV: bk,
      skipMaskedTiles: skipMaskedTiles, seqQ: seqQ, out: buffers, progress: progress)
    if parallel {
      // 9 heads on 2 threads would leave one idle for a ninth of the time; query blocks even it out.
      let qBlocks = (g.seqQ + bq - 1) / bq
      RowParallel.concurrent(items * qBlocks) { u in
        tiles.run(items: (u % items)..<(u % items + 1), qBlock: qBlocks - 1 - u / items)
      }
    } else {
      tiles.run(items: 0..<items)
    }
  }
}

/// Multiply-adds (query rows × keys × head width, over the heads and batch rows) of an attention
/// call worth a fork over the threads: the tile loop forks above it, a decode step from it on.
let attentionForkWork = 2e5

/// Query rows per band of a tile cut by a causal mask (see ``SoftmaxTiles/accumulate(_:scores:)``).
let causalBandRows = 64

/// One softmax attention call's tile loop: what every (batch, head) item reads and writes.
///
/// For each query block and key block: S = Q Kᵀ/√Dh (one GEMM), the score pipeline (mods and
/// mask, global indices), the online-softmax update of m and l and the rescale of o, then
/// o += P V (one GEMM). A tile the structural mods mask completely is skipped, except for rows
/// still at the masked maximum, which take it in as attnax's float32-min fill implies.
struct SoftmaxTiles {
  let q: HeadsView, k: HeadsView, v: HeadsView
  let geometry: AttentionGeometry
  let pipeline: ScorePipeline
  let blockQ: Int, blockKV: Int
  let skipMaskedTiles: Bool
  /// Query rows of the state (its `m`/`l` stride).
  let seqQ: Int
  let out: SoftmaxBuffers
  let progress: (() -> Void)?

  var headDim: Int { q.headDim }
  /// Row stride of `out.o`.
  var outStride: Int { geometry.heads * q.headDim }

  /// Runs (batch, head) items `items` (every query block, or only `qBlock`) with their own scratch tile.
  func run(items: Range<Int>, qBlock: Int? = nil) {
    let scores = UnsafeMutablePointer<Float>.allocate(capacity: blockQ * blockKV)
    let valueSum = UnsafeMutablePointer<Float>.allocate(capacity: headDim)
    defer { scores.deallocate(); valueSum.deallocate() }
    let qStarts = qBlock.map { [$0 * blockQ] } ?? Array(stride(from: 0, to: geometry.seqQ, by: blockQ))
    for item in items {
      let b = item / geometry.heads, h = item % geometry.heads
      for q0 in qStarts {
        let nq = min(blockQ, geometry.seqQ - q0)
        var k0 = 0
        while k0 < geometry.seqKV {
          let nk = min(blockKV, geometry.seqKV - k0)
          let tile = Tile(b: b, h: h, q0: q0, nq: nq, k0: k0, nk: nk, g: geometry)
          if skipMaskedTiles && pipeline.tileFullyMasked(b: b, q: tile.qRange, kv: tile.kvRange) {
            takeMaskedTile(tile, valueSum: valueSum)
          } else {
            accumulate(tile, scores: scores)
            progress?()
          }
          k0 += nk
        }
      }
    }
  }

  /// One tile: local and global rows and columns of a (batch, head).
  struct Tile {
    let b: Int, h: Int, q0: Int, nq: Int, k0: Int, nk: Int
    let qRange: Range<Int>, kvRange: Range<Int>
    init(b: Int, h: Int, q0: Int, nq: Int, k0: Int, nk: Int, g: AttentionGeometry) {
      self.b = b; self.h = h; self.q0 = q0; self.nq = nq; self.k0 = k0; self.nk = nk
      qRange = (g.qStart + q0)..<(g.qStart + q0 + nq)
      kvRange = (g.kvStart + k0)..<(g.kvStart + k0 + nk)
    }
  }

  /// Index of (b, h, local row 0 of the tile) in `m` and `l`.
  func statBase(_ t: Tile) -> Int { (t.b * geometry.heads + t.h) * seqQ + t.q0 }
  /// The tile's first output row in `o`.
  func outputTile(_ t: Tile) -> UnsafeMutablePointer<Float> { out.o + (t.b * seqQ + t.q0) * outStride + t.h * headDim }

  /// Scores, mods and mask, online softmax, and P·V for one tile. A tile cut by a causal mask
  /// (its last keys after some of its rows) runs as bands of ``causalBandRows`` rows, each band's
  /// products stopping at its last row's key: a 256 × 256 diagonal tile then costs 62.5% of
  /// its products (a 512-token prefill: 25% fewer attention FLOPs).
  func accumulate(_ t: Tile, scores: UnsafeMutablePointer<Float>) {
    let firstBand = t.qRange.lowerBound..<(t.qRange.lowerBound + causalBandRows)
    guard t.nq > causalBandRows, let frontier = pipeline.causalFrontier(q: firstBand), frontier < t.kvRange.upperBound else {
      accumulate(t, scores: scores, keys: t.nk)
      return
    }
    for r0 in stride(from: 0, to: t.nq, by: causalBandRows) {
      let band = Tile(b: t.b, h: t.h, q0: t.q0 + r0, nq: min(causalBandRows, t.nq - r0), k0: t.k0, nk: t.nk, g: geometry)
      let keys = max(0, min(t.nk, (pipeline.causalFrontier(q: band.qRange) ?? t.kvRange.upperBound) - t.kvRange.lowerBound))
      accumulate(band, scores: scores, keys: keys)
    }
  }

  /// One tile whose rows see none of its keys past the first `keys` (their scores are the masked
  /// fill without a product; P·V stops there too unless a row is still fully masked, when every
  /// key counts alike).
  func accumulate(_ t: Tile, scores: UnsafeMutablePointer<Float>, keys: Int) {
    let kvh = geometry.kvHeadOf[t.h]
    let qTile = q.at(b: t.b, row: t.q0, head: t.h), kTile = k.at(b: t.b, row: t.k0, head: kvh)
    if t.nq <= streamingRows {
      // A decode step: one pass over the keys (OpenBLAS's sgemv on a strided head is slower).
      ax_linear_rows(qTile, t.nq, headDim, q.rowStride, kTile, k.rowStride, t.nk, scores, t.nk)
      scaleInPlace(scores, t.nq * t.nk, by: 1 / Float(headDim).squareRoot())
    } else {
      sgemm(
        transB: true, m: t.nq, n: keys, k: headDim, alpha: 1 / Float(headDim).squareRoot(),
        a: qTile, lda: q.rowStride, b: kTile, ldb: k.rowStride, c: scores, ldc: t.nk)
      if keys < t.nk { for i in 0..<t.nq { (scores + i * t.nk + keys).update(repeating: maskedScore, count: t.nk - keys) } }
    }
    pipeline.apply(scores, ld: t.nk, b: t.b, hGlobal: geometry.headBase + t.h, q: t.qRange, kv: t.kvRange)
    let stat = statBase(t), oTile = outputTile(t)
    var fullyMasked = false
    for i in 0..<t.nq {
      let row = scores + i * t.nk
      let mOld = out.m[stat + i]
      let mNew = max(mOld, rowMax(row, t.nk, floor: maskedScore))
      let alpha = expShiftScalar(mOld - mNew), lOld = out.l[stat + i]
      let sum = expShiftSum(row, t.nk, shift: mNew)  // row becomes exp(s − mNew)
      out.l[stat + i] = lOld * alpha + sum
      out.m[stat + i] = mNew
      // A row that has taken in nothing yet (l = 0) has o = 0: nothing to rescale.
      if alpha != 1 && lOld != 0 { scaleInPlace(oTile + i * outStride, headDim, by: alpha) }
      fullyMasked = fullyMasked || mNew == maskedScore
    }
    let vTile = v.at(b: t.b, row: t.k0, head: kvh)
    if t.nq <= streamingRows {
      ax_rows_times(scores, t.nq, t.nk, t.nk, vTile, v.rowStride, headDim, oTile, outStride)
    } else {
      sgemm(
        m: t.nq, n: headDim, k: fullyMasked ? t.nk : keys, a: scores, lda: t.nk, b: vTile, ldb: v.rowStride, beta: 1,
        c: oTile, ldc: outStride)
    }
  }

  /// A tile whose every score is the float32 minimum: only rows still at that maximum take it
  /// in (l += nk, o += Σ v); the others would weigh it e^(fmin − m) = 0.
  func takeMaskedTile(_ t: Tile, valueSum: UnsafeMutablePointer<Float>) {
    let stat = statBase(t)
    guard (0..<t.nq).contains(where: { out.m[stat + $0] == maskedScore }) else { return }
    let kvh = geometry.kvHeadOf[t.h]
    valueSum.update(repeating: 0, count: headDim)
    for j in 0..<t.nk {
      let vr = v.at(b: t.b, row: t.k0 + j, head: kvh)
      for d in 0..<headDim { valueSum[d] += vr[d] }
    }
    let oTile = outputTile(t)
    for i in 0..<t.nq where out.m[stat + i] == maskedScore {
      out.l[stat + i] += Float(t.nk)
      let orow = oTile + i * outStride
      for d in 0..<headDim { orow[d] += valueSum[d] }
    }
  }
}
