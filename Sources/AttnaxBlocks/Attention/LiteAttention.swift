import AttnaxFormats
import Foundation

/// attnax `lite_attention`: gate_t = (q_t ⊙ k_t)·w + b (k_0 when seq_q ≠ seq_kv), softmax of
/// the gates over the query axis, times mask[..., t, 0], times v_t (v_0 when lengths differ).
/// q: (B, Sq, Hq·Dh), k/v: (B, Skv, Hkv·Dh) views -> (B, Sq, Hq·Dh).
func liteAttention(
  q: HeadsView, k: HeadsView, v: HeadsView, geometry g: AttentionGeometry,
  gateKernel: [Float], gateBias: Float, mask: Broadcast4<UInt8>?
) -> Tensor {
  let dh = q.headDim, seq = g.seqQ, hd = g.heads * dh
  let same = g.seqQ == g.seqKV
  var out = [Float](repeating: 0, count: g.batch * seq * hd)
  var gates = [Float](repeating: 0, count: seq)
  for b in 0..<g.batch {
    for h in 0..<g.heads {
      let kvh = g.kvHeadOf[h]
      var mx = -Float.infinity
      for t in 0..<seq {
        let qr = q.at(b: b, row: t, head: h), kr = k.at(b: b, row: same ? t : 0, head: kvh)
        var acc: Float = 0
        for d in 0..<dh { acc += (qr[d] * kr[d]) * gateKernel[d] }
        gates[t] = acc + gateBias
        mx = max(mx, gates[t])
      }
      let sum = seq > 0 ? gates.withUnsafeMutableBufferPointer { expShiftSum($0.baseAddress!, seq, shift: mx) } : 0
      for t in 0..<seq {
        var w = gates[t] / sum
        if let mask, mask.data[mask.offset(b: b, h: g.headBase + h, q: g.qStart + t, k: 0)] == 0 { w = 0 }
        let vr = v.at(b: b, row: same ? t : 0, head: kvh)
        let orow = (b * seq + t) * hd + h * dh
        for d in 0..<dh { out[orow + d] = w * vr[d] }
      }
    }
  }
  return Tensor(shape: [g.batch, seq, hd], data: out)
}
