import AttnaxDist
import Foundation

/// Heads laid out inside a row-major activation: element (b, row, head, d) sits at
/// `base[b * batchStride + row * rowStride + head * headDim + d]`.
struct HeadsView {
  let base: UnsafePointer<Float>
  let batchStride: Int
  let rowStride: Int
  let headDim: Int
  @inline(__always) func at(b: Int, row: Int, head: Int) -> UnsafePointer<Float> {
    base + b * batchStride + row * rowStride + head * headDim
  }
}

/// Running online-softmax statistics and the unnormalised output for a query shard.
///
/// `m`, `l`: (batch, heads, seqQ); `o`: (batch, seqQ, heads·headDim), the layout the output
/// projection reads. Partial results from several key blocks (or ring steps) merge here.
public struct SoftmaxState {
  public let batch: Int, heads: Int, seqQ: Int, headDim: Int
  public var m: [Float]
  public var l: [Float]
  public var o: [Float]

  public init(batch: Int, heads: Int, seqQ: Int, headDim: Int) {
    self.batch = batch; self.heads = heads; self.seqQ = seqQ; self.headDim = headDim
    m = [Float](repeating: maskedScore, count: batch * heads * seqQ)
    l = [Float](repeating: 0, count: batch * heads * seqQ)
    o = [Float](repeating: 0, count: batch * seqQ * heads * headDim)
  }

  /// Merges the partial states of every rank of `group` (each attended to a disjoint set of
  /// keys) by the online-softmax rule with one allgather: M = max m_r, L = Σ l_r·e^(m_r−M),
  /// O = Σ o_r·e^(m_r−M). Float32-min semantics carry over (all-masked everywhere → uniform).
  public mutating func merge(over group: Communicator) throws {
    guard group.size > 1 else { return }
    let flat = m + l + o
    let all = try group.allgather(flat)
    let n = m.count, per = flat.count, hd = heads * headDim
    var mm = [Float](repeating: maskedScore, count: n)
    for r in 0..<group.size { for i in 0..<n { mm[i] = max(mm[i], all[r * per + i]) } }
    var ll = [Float](repeating: 0, count: n), oo = [Float](repeating: 0, count: o.count)
    for r in 0..<group.size {
      let base = r * per
      for b in 0..<batch {
        for h in 0..<heads {
          for i in 0..<seqQ {
            let s = (b * heads + h) * seqQ + i
            let w = expShiftScalar(all[base + s] - mm[s])
            ll[s] += all[base + n + s] * w
            if w == 0 { continue }
            let orow = (b * seqQ + i) * hd + h * headDim
            for d in 0..<headDim { oo[orow + d] += all[base + 2 * n + orow + d] * w }
          }
        }
      }
    }
    m = mm; l = ll; o = oo
  }

  /// o ← o / (l + epsilon) in place: attnax's standard softmax uses 0, the blocked backends 1e-10.
  public mutating func normalize(epsilon: Float) {
    let hd = heads * headDim
    let (batch, heads, seqQ, headDim) = (self.batch, self.heads, self.seqQ, self.headDim)
    l.withUnsafeBufferPointer { lp in
      o.withUnsafeMutableBufferPointer { op in
        for b in 0..<batch {
          for h in 0..<heads {
            for i in 0..<seqQ {
              let inv = 1 / (lp[(b * heads + h) * seqQ + i] + epsilon)
              scaleInPlace(op.baseAddress! + (b * seqQ + i) * hd + h * headDim, headDim, by: inv)
            }
          }
        }
      }
    }
  }

  /// The normalised output (B, Sq, Hq·Dh), taking the state's buffer (no copy).
  public consuming func finalize(epsilon: Float) -> Tensor {
    normalize(epsilon: epsilon)
    return Tensor(shape: [batch, seqQ, heads * headDim], data: o)
  }
}

/// Where a call's queries and keys sit globally, and how query heads map to KV heads.
struct AttentionGeometry {
  let batch: Int
  let seqQ: Int
  let seqKV: Int
  /// Global index of local query row 0 and of key row 0.
  let qStart: Int
  let kvStart: Int
  /// Local query heads and the global index of local head 0.
  let heads: Int
  let headBase: Int
  /// Local KV head read by each local query head.
  let kvHeadOf: [Int]
}

/// Accumulates softmax attention of all queries against one contiguous run of keys into `state`.
///
/// q: (B, Sq, Hq·Dh) view, k/v: (B, Skv, Hkv·Dh) views. Tiles are `blockQ` × `blockKV`;
/// each tile runs the shared ``ScorePipeline`` and the online-softmax update, so memory is
/// O(block²) per tile and never Sq × Skv unless the block covers it (standard attention).
func accumulateSoftmaxAttention(
  q: HeadsView, k: HeadsView, v: HeadsView, geometry g: AttentionGeometry, pipeline: ScorePipeline,
  blockQ: Int, blockKV: Int, skipMaskedTiles: Bool, state: inout SoftmaxState,
  progress: (() -> Void)? = nil
) {
  let dh = q.headDim
  let scale = 1 / Float(dh).squareRoot()
  let bq = min(blockQ, g.seqQ), bk = min(blockKV, g.seqKV)
  guard bq > 0, bk > 0 else { return }
  let hd = state.heads * dh
  let seqQ = state.seqQ
  let items = g.batch * g.heads
  // Heads run in parallel when BLAS has several threads: each worker calls BLAS single-threaded.
  let workers = min(BLAS.threads, items)
  let perItem = Double(g.seqQ) * Double(g.seqKV) * Double(dh)
  let parallel = workers > 1 && perItem * Double(items) > 4e6 && progress == nil
  state.m.withUnsafeMutableBufferPointer { mpb in
    state.l.withUnsafeMutableBufferPointer { lpb in
      state.o.withUnsafeMutableBufferPointer { opb in
        let mp = mpb.baseAddress!, lp = lpb.baseAddress!, op = opb.baseAddress!
        func runHeads(_ range: Range<Int>) {
          let t = UnsafeMutablePointer<Float>.allocate(capacity: bq * bk)
          let colSum = UnsafeMutablePointer<Float>.allocate(capacity: dh)
          defer { t.deallocate(); colSum.deallocate() }
          for item in range {
            let b = item / g.heads, h = item % g.heads
            softmaxHead(b: b, h: h, q: q, k: k, v: v, g: g, pipeline: pipeline, bq: bq, bk: bk, scale: scale,
                        skipMaskedTiles: skipMaskedTiles, seqQ: seqQ, hd: hd, t: t, colSum: colSum,
                        mp: mp, lp: lp, op: op, progress: progress)
          }
        }
        if parallel {
          let saved = BLAS.threads
          BLAS.threads = 1
          DispatchQueue.concurrentPerform(iterations: workers) { w in
            runHeads(ShardingPlan.evenSplit(items, parts: workers, index: w))
          }
          BLAS.threads = saved
        } else {
          runHeads(0..<items)
        }
      }
    }
  }
}

/// One (batch, head): all query blocks against all key blocks of the call.
@inline(__always)
private func softmaxHead(
  b: Int, h: Int, q: HeadsView, k: HeadsView, v: HeadsView, g: AttentionGeometry, pipeline: ScorePipeline,
  bq: Int, bk: Int, scale: Float, skipMaskedTiles: Bool, seqQ: Int, hd: Int,
  t: UnsafeMutablePointer<Float>, colSum: UnsafeMutablePointer<Float>,
  mp: UnsafeMutablePointer<Float>, lp: UnsafeMutablePointer<Float>, op: UnsafeMutablePointer<Float>,
  progress: (() -> Void)?
) {
  let dh = q.headDim
              let kvh = g.kvHeadOf[h]
              let hGlobal = g.headBase + h
              let stat = (b * g.heads + h) * seqQ
              var q0 = 0
              while q0 < g.seqQ {
                let nq = min(bq, g.seqQ - q0)
                let qRange = (g.qStart + q0)..<(g.qStart + q0 + nq)
                var k0 = 0
                while k0 < g.seqKV {
                  let nk = min(bk, g.seqKV - k0)
                  let kRange = (g.kvStart + k0)..<(g.kvStart + k0 + nk)
                  let oTile = op + (b * seqQ + q0) * hd + h * dh
                  if skipMaskedTiles && pipeline.tileFullyMasked(b: b, q: qRange, kv: kRange) {
                    // Every score is fmin: only rows still at m == fmin take it in (l += nk, o += Σv).
                    var needs = false
                    for i in 0..<nq where mp[stat + q0 + i] == maskedScore { needs = true; break }
                    if needs {
                      for d in 0..<dh { colSum[d] = 0 }
                      for j in 0..<nk {
                        let vr = v.at(b: b, row: k0 + j, head: kvh)
                        for d in 0..<dh { colSum[d] += vr[d] }
                      }
                      for i in 0..<nq where mp[stat + q0 + i] == maskedScore {
                        lp[stat + q0 + i] += Float(nk)
                        let orow = oTile + i * hd
                        for d in 0..<dh { orow[d] += colSum[d] }
                      }
                    }
                    k0 += nk
                    continue
                  }
                  sgemm(transB: true, m: nq, n: nk, k: dh, alpha: scale,
                        a: q.at(b: b, row: q0, head: h), lda: q.rowStride,
                        b: k.at(b: b, row: k0, head: kvh), ldb: k.rowStride,
                        c: t, ldc: nk)
                  pipeline.apply(t, ld: nk, b: b, hGlobal: hGlobal, q: qRange, kv: kRange)
                  // Online softmax update, row by row.
                  for i in 0..<nq {
                    let row = t + i * nk
                    let mb = rowMax(row, nk, floor: maskedScore)
                    let mOld = mp[stat + q0 + i]
                    let mNew = max(mOld, mb)
                    let alpha = expShiftScalar(mOld - mNew)
                    let sum = expShiftSum(row, nk, shift: mNew)
                    lp[stat + q0 + i] = lp[stat + q0 + i] * alpha + sum
                    mp[stat + q0 + i] = mNew
                    if alpha != 1 { scaleInPlace(oTile + i * hd, dh, by: alpha) }
                  }
                  sgemm(m: nq, n: dh, k: nk, a: t, lda: nk,
                        b: v.at(b: b, row: k0, head: kvh), ldb: v.rowStride,
                        beta: 1, c: oTile, ldc: hd)
                  progress?()
                  k0 += nk
                }
                q0 += nq
              }
}
