import AttnaxDist
import AttnaxFormats
import Foundation

/// Carry of causal linear attention between chunks: S = Σ φ(k)ᵀv (Dh×Dh) and z = Σ φ(k) (Dh)
/// per (batch, local head), kept in one buffer `[S | z]`. Ring/context parallelism passes it
/// from rank to rank.
public struct LinearAttentionState {
  /// Batch rows.
  public let batch: Int
  /// Local heads.
  public let heads: Int
  /// Features per head.
  public let headDim: Int
  /// `[S | z]`: S (batch, heads, Dh, Dh) then z (batch, heads, Dh).
  var storage: [Float]

  /// A zero carry (the start of a sequence).
  public init(batch: Int, heads: Int, headDim: Int) {
    self.batch = batch; self.heads = heads; self.headDim = headDim
    storage = [Float](repeating: 0, count: batch * heads * headDim * (headDim + 1))
  }

  /// Elements of S.
  var sCount: Int { batch * heads * headDim * headDim }
  /// S (a copy).
  public var s: [Float] { Array(storage[..<sCount]) }
  /// z (a copy).
  public var z: [Float] { Array(storage[sCount...]) }
  /// Offsets of (batch b, head h)'s S and z in ``storage``.
  func offsets(b: Int, h: Int) -> (s: Int, z: Int) {
    let item = b * heads + h
    return (item * headDim * headDim, sCount + item * headDim)
  }
}

@inline(__always) func phi(_ x: Float) -> Float { x > 0 ? x + 1 : expm1f(x) + 1 }

/// attnax `linear_attention` (causal, chunked, φ = elu + 1, ε = 1e-6): q, k, v views of
/// (B, S, H·Dh); `keyMask(b, h, j)` is row 0 of the broadcast mask (key padding).
/// Starts from `state` and leaves the carry after the last chunk in it; writes (B, S, Hq·Dh).
func linearAttention(
  q: HeadsView, k: HeadsView, v: HeadsView, geometry g: AttentionGeometry, chunk: Int,
  keyMask: ((Int, Int, Int) -> Bool)?, state: inout LinearAttentionState
) -> Tensor {
  let dh = q.headDim, seq = g.seqQ, hd = g.heads * dh
  // Scratch: φ(q), φ(k), v of one head (seq, Dh); q·kᵀ of a chunk; the numerator of a chunk.
  let qp = UnsafeMutablePointer<Float>.allocate(capacity: max(1, 3 * seq * dh + chunk * chunk + chunk * dh))
  defer { qp.deallocate() }
  let kp = qp + seq * dh, vp = kp + seq * dh, qk = vp + seq * dh, num = qk + chunk * chunk
  let carryOffsets = (0..<(g.batch * g.heads)).map { state.offsets(b: $0 / g.heads, h: $0 % g.heads) }
  let out = [Float](unsafeUninitializedCapacity: g.batch * seq * hd) { op, count in
    state.storage.withUnsafeMutableBufferPointer { carry in
      for b in 0..<g.batch {
        for h in 0..<g.heads {
          let kvh = g.kvHeadOf[h]
          for t in 0..<seq {
            let qr = q.at(b: b, row: t, head: h), kr = k.at(b: b, row: t, head: kvh), vr = v.at(b: b, row: t, head: kvh)
            let keep = keyMask?(b, g.headBase + h, t) ?? true
            for d in 0..<dh {
              qp[t * dh + d] = phi(qr[d])
              kp[t * dh + d] = keep ? phi(kr[d]) : 0
              vp[t * dh + d] = keep ? vr[d] : 0
            }
          }
          let off = carryOffsets[b * g.heads + h]
          let S = carry.baseAddress! + off.s, z = carry.baseAddress! + off.z
          var c0 = 0
          while c0 < seq {
            let n = min(chunk, seq - c0)
            let qc = qp + c0 * dh, kc = kp + c0 * dh, vc = vp + c0 * dh
            // inter = qc·S ; intra = (qc·kcᵀ ∘ causal)·vc
            sgemm(m: n, n: dh, k: dh, a: qc, lda: dh, b: S, ldb: dh, c: num, ldc: dh)
            sgemm(transB: true, m: n, n: n, k: dh, a: qc, lda: dh, b: kc, ldb: dh, c: qk, ldc: n)
            for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { qk[i * n + j] = 0 } }
            sgemm(m: n, n: dh, k: n, a: qk, lda: n, b: vc, ldb: dh, beta: 1, c: num, ldc: dh)
            for i in 0..<n {
              var interZ: Float = 0, intraZ: Float = 0
              for d in 0..<dh { interZ += qc[i * dh + d] * z[d] }
              for j in 0...i { intraZ += qk[i * n + j] }
              let inv = 1 / (interZ + intraZ + 1e-6)
              let orow = op.baseAddress! + (b * seq + c0 + i) * hd + h * dh
              for d in 0..<dh { orow[d] = num[i * dh + d] * inv }
            }
            // S += kcᵀ·vc ; z += Σ kc
            sgemm(transA: true, m: dh, n: dh, k: n, a: kc, lda: dh, b: vc, ldb: dh, beta: 1, c: S, ldc: dh)
            for i in 0..<n { for d in 0..<dh { z[d] += kc[i * dh + d] } }
            c0 += n
          }
        }
      }
    }
    count = g.batch * seq * hd
  }
  return Tensor(shape: [g.batch, seq, hd], data: out)
}

/// Σ φ(k)ᵀv and Σ φ(k) over this rank's rows, then the exclusive prefix over the cp ring, so
/// causal linear attention on a contiguous shard starts from the carry of every earlier rank.
func linearAttentionCarry(
  k: HeadsView, v: HeadsView, geometry g: AttentionGeometry, keyMask: ((Int, Int, Int) -> Bool)?,
  cp: Communicator
) throws -> LinearAttentionState {
  let dh = k.headDim
  var carry = LinearAttentionState(batch: g.batch, heads: g.heads, headDim: dh)
  guard cp.size > 1 else { return carry }
  var local = carry
  for b in 0..<g.batch {
    for h in 0..<g.heads {
      let kvh = g.kvHeadOf[h]
      let off = local.offsets(b: b, h: h)
      for t in 0..<g.seqKV where keyMask?(b, g.headBase + h, g.kvStart + t) ?? true {
        let kr = k.at(b: b, row: t, head: kvh), vr = v.at(b: b, row: t, head: kvh)
        for i in 0..<dh {
          let pk = phi(kr[i])
          local.storage[off.z + i] += pk
          for j in 0..<dh { local.storage[off.s + i * dh + j] += pk * vr[j] }
        }
      }
    }
  }
  let all = try cp.allgather(local.storage)
  let n = local.storage.count
  for r in 0..<cp.rank {
    for i in 0..<n { carry.storage[i] += all[r * n + i] }
  }
  return carry
}
