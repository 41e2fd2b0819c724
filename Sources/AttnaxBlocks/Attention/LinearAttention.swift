import AttnaxDist
import AttnaxFormats
import Foundation

/// Carry of causal linear attention between chunks: S = Σ φ(k)ᵀv (Dh×Dh) and z = Σ φ(k) (Dh)
/// per (batch, local head). Ring/context parallelism passes it from rank to rank.
public struct LinearAttentionState {
  public var s: [Float]
  public var z: [Float]
  public init(batch: Int, heads: Int, headDim: Int) {
    s = [Float](repeating: 0, count: batch * heads * headDim * headDim)
    z = [Float](repeating: 0, count: batch * heads * headDim)
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
  var out = [Float](repeating: 0, count: g.batch * seq * hd)
  var qp = [Float](repeating: 0, count: seq * dh), kp = qp, vp = qp
  var qk = [Float](repeating: 0, count: chunk * chunk)
  var num = [Float](repeating: 0, count: chunk * dh)
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
      let sOff = (b * g.heads + h) * dh * dh, zOff = (b * g.heads + h) * dh
      qp.withUnsafeBufferPointer { qpp in kp.withUnsafeBufferPointer { kpp in vp.withUnsafeBufferPointer { vpp in
      state.s.withUnsafeMutableBufferPointer { sp in state.z.withUnsafeMutableBufferPointer { zp in
      qk.withUnsafeMutableBufferPointer { qkp in num.withUnsafeMutableBufferPointer { np in
      out.withUnsafeMutableBufferPointer { op in
        let S = sp.baseAddress! + sOff, z = zp.baseAddress! + zOff
        var c0 = 0
        while c0 < seq {
          let n = min(chunk, seq - c0)
          let qc = qpp.baseAddress! + c0 * dh, kc = kpp.baseAddress! + c0 * dh, vc = vpp.baseAddress! + c0 * dh
          // inter = qc·S ; intra = (qc·kcᵀ ∘ causal)·vc
          sgemm(m: n, n: dh, k: dh, a: qc, lda: dh, b: S, ldb: dh, c: np.baseAddress!, ldc: dh)
          sgemm(transB: true, m: n, n: n, k: dh, a: qc, lda: dh, b: kc, ldb: dh, c: qkp.baseAddress!, ldc: n)
          for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { qkp[i * n + j] = 0 } }
          sgemm(m: n, n: dh, k: n, a: qkp.baseAddress!, lda: n, b: vc, ldb: dh, beta: 1, c: np.baseAddress!, ldc: dh)
          for i in 0..<n {
            var interZ: Float = 0, intraZ: Float = 0
            for d in 0..<dh { interZ += qc[i * dh + d] * z[d] }
            for j in 0...i { intraZ += qkp[i * n + j] }
            let inv = 1 / (interZ + intraZ + 1e-6)
            let orow = op.baseAddress! + (b * seq + c0 + i) * hd + h * dh
            for d in 0..<dh { orow[d] = np[i * dh + d] * inv }
          }
          // S += kcᵀ·vc ; z += Σ kc
          sgemm(transA: true, m: dh, n: dh, k: n, a: kc, lda: dh, b: vc, ldb: dh, beta: 1, c: S, ldc: dh)
          for i in 0..<n { for d in 0..<dh { z[d] += kc[i * dh + d] } }
          c0 += n
        }
      }}}}}}}}
    }
  }
  return Tensor(shape: [g.batch, seq, hd], data: out)
}

/// Σ φ(k)ᵀv and Σ φ(k) over this rank's rows, then the exclusive prefix over the cp ring, so
/// causal linear attention on a contiguous shard starts from the carry of every earlier rank.
func linearAttentionCarry(k: HeadsView, v: HeadsView, geometry g: AttentionGeometry, keyMask: ((Int, Int, Int) -> Bool)?,
                          cp: Communicator) throws -> LinearAttentionState {
  let dh = k.headDim
  var local = LinearAttentionState(batch: g.batch, heads: g.heads, headDim: dh)
  for b in 0..<g.batch {
    for h in 0..<g.heads {
      let kvh = g.kvHeadOf[h]
      let sOff = (b * g.heads + h) * dh * dh, zOff = (b * g.heads + h) * dh
      for t in 0..<g.seqKV where keyMask?(b, g.headBase + h, g.kvStart + t) ?? true {
        let kr = k.at(b: b, row: t, head: kvh), vr = v.at(b: b, row: t, head: kvh)
        for i in 0..<dh {
          let pk = phi(kr[i])
          local.z[zOff + i] += pk
          for j in 0..<dh { local.s[sOff + i * dh + j] += pk * vr[j] }
        }
      }
    }
  }
  guard cp.size > 1 else { return LinearAttentionState(batch: g.batch, heads: g.heads, headDim: dh) }
  let flat = local.s + local.z
  let all = try cp.allgather(flat)
  var carry = LinearAttentionState(batch: g.batch, heads: g.heads, headDim: dh)
  let ns = local.s.count
  for r in 0..<cp.rank {
    let base = r * flat.count
    for i in 0..<ns { carry.s[i] += all[base + i] }
    for i in 0..<local.z.count { carry.z[i] += all[base + ns + i] }
  }
  return carry
}
