import AttnaxFormats
import AttnaxDist
import Foundation

/// Time spent in ring attention on this rank since the last ``reset()``: computing tiles, and
/// waiting for shards still in flight after the compute (communication not hidden).
public enum RingProfile {
  public nonisolated(unsafe) static var computeSeconds: Double = 0
  public nonisolated(unsafe) static var waitSeconds: Double = 0
  public nonisolated(unsafe) static var bytesSent: Int = 0
  public static func reset() { computeSeconds = 0; waitSeconds = 0; bytesSent = 0 }
}


/// A fixed-address float buffer for non-blocking transfers (Swift arrays may move).
final class RingBuffer {
  let pointer: UnsafeMutableBufferPointer<Float>
  init(count: Int) { pointer = .allocate(capacity: max(count, 1)); pointer.initialize(repeating: 0) }
  deinit { pointer.deallocate() }
}

/// Ring attention: this rank's query rows attend to every key/value shard as the shards travel
/// around the cp ring (send to rank+1, receive from rank−1), double buffered so the next shard
/// arrives while the current one is computed. Partials merge by the online-softmax rule in
/// ``SoftmaxState``; masks and score mods see global indices, so the result equals one rank's.
///
/// q: (B, Sq_local, Hq·Dh); k, v: (B, Skv_local, Hkv·Dh) of this rank -> (B, Sq_local, Hq·Dh).
/// k and v are packed into the ring buffer and released (set empty) to keep peak memory low.
func ringSoftmaxAttention(
  q: Tensor, k: inout Tensor, v: inout Tensor, sequence ctx: SequenceContext, heads: Int, headBase: Int, kvHeadOf: [Int],
  headDim dh: Int, pipeline: ScorePipeline, blockQ: Int, blockKV: Int, blocked: Bool
) throws -> Tensor {
  let batch = q.shape[0], cp = ctx.cp, C = ctx.ringSize
  let me = C > 1 ? cp.rank : 0
  let qPieces = ctx.q.pieces(of: ctx.q.isSharded ? cp.rank : 0)
  let wKV = k.shape[2]
  // Local shard packed as [K | V], each (B, n, W); buffers sized for the largest shard.
  let maxN = (0..<C).map { ctx.kv.localLength(of: $0) }.max() ?? 0
  let cap = 2 * batch * maxN * wKV
  var current = RingBuffer(count: cap), incoming = RingBuffer(count: cap)
  let n0 = k.shape[1]
  _ = UnsafeMutableBufferPointer(rebasing: current.pointer[0..<(batch * n0 * wKV)]).update(fromContentsOf: k.data)
  _ = UnsafeMutableBufferPointer(rebasing: current.pointer[(batch * n0 * wKV)..<(2 * batch * n0 * wKV)]).update(fromContentsOf: v.data)
  k = Tensor(zeros: [0]); v = Tensor(zeros: [0])
  var states = qPieces.map { SoftmaxState(batch: batch, heads: heads, seqQ: $0.count, headDim: dh) }
  let owners = ringOwners(rank: me, size: C)
  let next = (me + 1) % C, prev = (me - 1 + C) % C
  try q.data.withUnsafeBufferPointer { qp in
    for (step, owner) in owners.enumerated() {
      let n = ctx.kv.localLength(of: owner)
      var requests: [Request] = []
      if step < C - 1 {
        let sendCount = 2 * batch * n * wKV
        let recvCount = 2 * batch * ctx.kv.localLength(of: owners[step + 1]) * wKV
        requests.append(try cp.isend(UnsafeBufferPointer(rebasing: current.pointer[..<sendCount]), to: next, tag: 7))
        requests.append(try cp.irecv(UnsafeMutableBufferPointer(rebasing: incoming.pointer[..<recvCount]), from: prev, tag: 7))
      }
      if step < C - 1 { RingProfile.bytesSent += 8 * batch * n * wKV }
      let progress: () -> Void = { for r in requests { _ = try? cp.test(r) } }
      let t0 = MonotonicClock.seconds()
      accumulateRingShard(
        q: qp, qPieces: qPieces, shard: UnsafePointer(current.pointer.baseAddress!), owner: owner, kv: ctx.kv,
        batch: batch, width: wKV, heads: heads, headBase: headBase, kvHeadOf: kvHeadOf, headDim: dh, pipeline: pipeline,
        blockQ: blockQ, blockKV: blockKV, states: &states, progress: requests.isEmpty ? nil : progress)
      let t1 = MonotonicClock.seconds()
      RingProfile.computeSeconds += t1 - t0
      if !requests.isEmpty {
        try cp.waitAll(requests)
        RingProfile.waitSeconds += MonotonicClock.seconds() - t1
        swap(&current, &incoming)
      }
    }
  }
  return ringOutput(&states, qPieces: qPieces, batch: batch, width: heads * dh, epsilon: blocked ? 1e-10 : 0)
}

/// The K/V shards rank `me` of a ring of `size` computes with, in order: at step s it holds
/// the shard of rank (me − s) mod size (its own first, then each predecessor's as it arrives
/// from rank me − 1).
func ringOwners(rank me: Int, size: Int) -> [Int] {
  (0..<size).map { (me - $0 + size) % size }
}

/// One ring step: this rank's query pieces (q: (B, Sq_local, Hq·Dh), pieces `qPieces` of the
/// query layout in local order) attend to the shard of rank `owner`, packed at `shard` as
/// [K | V], each (B, n, width) with n = kv.localLength(of: owner) rows laid out as
/// kv.pieces(of: owner). Masks and mods see global rows; each query piece has its own state.
func accumulateRingShard(
  q: UnsafeBufferPointer<Float>, qPieces: [Range<Int>], shard base: UnsafePointer<Float>, owner: Int, kv: SequenceLayout,
  batch: Int, width wKV: Int, heads: Int, headBase: Int, kvHeadOf: [Int], headDim dh: Int, pipeline: ScorePipeline,
  blockQ: Int, blockKV: Int, states: inout [SoftmaxState], progress: (() -> Void)?
) {
  let hd = heads * dh
  let localQ = qPieces.reduce(0) { $0 + $1.count }
  let n = kv.localLength(of: owner)
  var kvOffset = 0
  for piece in kv.pieces(of: owner) {
    let kView = HeadsView(base: base + kvOffset * wKV, batchStride: n * wKV, rowStride: wKV, headDim: dh)
    let vView = HeadsView(base: base + batch * n * wKV + kvOffset * wKV, batchStride: n * wKV, rowStride: wKV, headDim: dh)
    var qOffset = 0
    for (i, qp0) in qPieces.enumerated() {
      let qView = HeadsView(base: q.baseAddress! + qOffset * hd, batchStride: localQ * hd, rowStride: hd, headDim: dh)
      let g = AttentionGeometry(batch: batch, seqQ: qp0.count, seqKV: piece.count, qStart: qp0.lowerBound,
                                kvStart: piece.lowerBound, heads: heads, headBase: headBase, kvHeadOf: kvHeadOf)
      accumulateSoftmaxAttention(q: qView, k: kView, v: vView, geometry: g, pipeline: pipeline,
                                 blockQ: blockQ, blockKV: blockKV, skipMaskedTiles: true, state: &states[i],
                                 progress: progress)
      qOffset += qp0.count
    }
    kvOffset += piece.count
  }
}

/// Finalises each query piece's state: one piece is the output as it stands; several are laid
/// out in local row order, (B, Sq_local, hd).
func ringOutput(_ states: inout [SoftmaxState], qPieces: [Range<Int>], batch: Int, width hd: Int, epsilon: Float) -> Tensor {
  if states.count == 1 {
    return states.removeLast().finalize(epsilon: epsilon)
  }
  let localQ = qPieces.reduce(0) { $0 + $1.count }
  var out = [Float](repeating: 0, count: batch * localQ * hd)
  var qOffset = 0
  for i in states.indices {
    let piece = states[i].finalize(epsilon: epsilon)
    let n = qPieces[i].count
    for b in 0..<batch {
      let src = b * n * hd, dst = (b * localQ + qOffset) * hd
      out.replaceSubrange(dst..<(dst + n * hd), with: piece.data[src..<(src + n * hd)])
    }
    qOffset += n
  }
  return Tensor(shape: [batch, localQ, hd], data: out)
}
