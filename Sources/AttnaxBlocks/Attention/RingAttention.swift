import AttnaxDist
import AttnaxFormats
import Foundation

/// Time spent in ring attention on this rank since the last ``reset()``: computing tiles, and
/// waiting for shards still in flight after the compute (communication not hidden).
public enum RingProfile {
  /// Seconds of tile compute inside ring steps (bench instrumentation; one forward at a time).
  public nonisolated(unsafe) static var computeSeconds: Double = 0
  /// Seconds spent waiting for shards after the compute of a step.
  public nonisolated(unsafe) static var waitSeconds: Double = 0
  /// Bytes this rank sent around the ring.
  public nonisolated(unsafe) static var bytesSent: Int = 0
  /// Zeroes the three counters.
  public static func reset() { computeSeconds = 0; waitSeconds = 0; bytesSent = 0 }
}

/// A fixed-address float buffer for non-blocking transfers (Swift arrays may move).
final class RingBuffer {
  let pointer: UnsafeMutableBufferPointer<Float>
  init(count: Int) { pointer = .allocate(capacity: max(count, 1)); pointer.initialize(repeating: 0) }
  deinit { pointer.deallocate() }
}

/// The key/value shards that travel around a cp ring: the global rows each rank contributes,
/// in its local order (from a sequence layout, or from a KV cache sharded over the ring).
struct RingShards: Sendable, Equatable {
  /// pieces[r]: global row ranges of rank r's shard, in local order.
  let pieces: [[Range<Int>]]

  /// The shards of a sequence split by `layout` (a ring of `layout.parts`, or of one rank when
  /// the layout is not sharded).
  init(layout: SequenceLayout) {
    pieces = (0..<(layout.isSharded ? layout.parts : 1)).map { layout.pieces(of: $0) }
  }

  init(pieces: [[Range<Int>]]) { self.pieces = pieces }

  /// Ranks in the ring.
  var size: Int { pieces.count }
  /// Rows of rank `r`'s shard.
  func count(of r: Int) -> Int { pieces[r].reduce(0) { $0 + $1.count } }

  /// A ring buffer for the largest shard as [K | V] of `batch` rows of `width` floats.
  func buffer(batch: Int, width: Int) -> RingBuffer {
    RingBuffer(count: 2 * batch * width * ((0..<size).map { count(of: $0) }.max() ?? 0))
  }
}

/// What every tile loop of one attention call reads: the batch, this rank's heads and their KV
/// heads, the tiling and the score pipeline, and the normaliser's epsilon.
struct AttentionCall {
  let batch: Int
  /// Local query heads, the global index of the first, and the local KV head of each.
  let heads: Int
  let headBase: Int
  let kvHeadOf: [Int]
  let headDim: Int
  let pipeline: ScorePipeline
  let blockQ: Int
  let blockKV: Int
  /// attnax's standard softmax divides by l; the blocked backends by l + 1e-10.
  let epsilon: Float
}

/// Ring attention: this rank's query rows attend to every key/value shard as the shards travel
/// around the cp ring (send to rank+1, receive from rank−1), double buffered so the next shard
/// arrives while the current one is computed. Partials merge by the online-softmax rule in
/// ``SoftmaxState``; masks and score mods see global indices, so the result equals one rank's.
///
/// q: (B, Sq_local, Hq·Dh), its rows the global ranges `qPieces` in local order. `local` holds
/// this rank's own shard as [K | V], each (B, n, width), in a buffer from
/// ``RingShards/buffer(batch:width:)`` (packed by the caller from the projections or the KV
/// cache, which can then release them) -> (B, Sq_local, Hq·Dh).
func ringSoftmaxAttention(
  q: Tensor, qPieces: [Range<Int>], shards: RingShards, width wKV: Int, cp: Communicator, call: AttentionCall,
  local: RingBuffer
) throws -> Tensor {
  let batch = call.batch, C = shards.size
  let me = C > 1 ? cp.rank : 0
  var current = local, incoming = shards.buffer(batch: batch, width: wKV)
  var states = qPieces.map { SoftmaxState(batch: batch, heads: call.heads, seqQ: $0.count, headDim: call.headDim) }
  let owners = ringOwners(rank: me, size: C)
  let next = (me + 1) % C, prev = (me - 1 + C) % C
  try q.data.withUnsafeBufferPointer { qp in
    for (step, owner) in owners.enumerated() {
      let n = shards.count(of: owner)
      var requests: [Request] = []
      if step < C - 1 {
        let recvCount = 2 * batch * shards.count(of: owners[step + 1]) * wKV
        requests.append(try cp.isend(UnsafeBufferPointer(rebasing: current.pointer[..<(2 * batch * n * wKV)]), to: next, tag: 7))
        requests.append(try cp.irecv(UnsafeMutableBufferPointer(rebasing: incoming.pointer[..<recvCount]), from: prev, tag: 7))
        RingProfile.bytesSent += 8 * batch * n * wKV
      }
      let progress: () -> Void = { for r in requests { _ = try? cp.test(r) } }
      let t0 = MonotonicClock.seconds()
      accumulateRingShard(
        q: qp, qPieces: qPieces, shard: UnsafePointer(current.pointer.baseAddress!), pieces: shards.pieces[owner],
        width: wKV, call: call, states: &states, progress: requests.isEmpty ? nil : progress)
      let t1 = MonotonicClock.seconds()
      RingProfile.computeSeconds += t1 - t0
      if !requests.isEmpty {
        try cp.waitAll(requests)
        RingProfile.waitSeconds += MonotonicClock.seconds() - t1
        swap(&current, &incoming)
      }
    }
  }
  return ringOutput(&states, qPieces: qPieces, batch: batch, width: call.heads * call.headDim, epsilon: call.epsilon)
}

/// The K/V shards rank `me` of a ring of `size` computes with, in order: at step s it holds
/// the shard of rank (me − s) mod size (its own first, then each predecessor's as it arrives
/// from rank me − 1).
func ringOwners(rank me: Int, size: Int) -> [Int] {
  (0..<size).map { (me - $0 + size) % size }
}

/// One ring step: this rank's query pieces (q: (B, Sq_local, Hq·Dh), pieces `qPieces` of the
/// query layout in local order) attend to one rank's shard, packed at `shard` as [K | V], each
/// (B, n, width) with n rows whose global rows are `pieces` in local order. Masks and mods see
/// global rows; each query piece has its own state.
func accumulateRingShard(
  q: UnsafeBufferPointer<Float>, qPieces: [Range<Int>], shard base: UnsafePointer<Float>, pieces: [Range<Int>],
  width wKV: Int, call: AttentionCall, states: inout [SoftmaxState], progress: (() -> Void)?
) {
  let dh = call.headDim, hd = call.heads * dh, batch = call.batch
  let localQ = qPieces.reduce(0) { $0 + $1.count }
  let n = pieces.reduce(0) { $0 + $1.count }
  var kvOffset = 0
  for piece in pieces {
    let kView = HeadsView(base: base + kvOffset * wKV, batchStride: n * wKV, rowStride: wKV, headDim: dh)
    let vView = HeadsView(base: base + batch * n * wKV + kvOffset * wKV, batchStride: n * wKV, rowStride: wKV, headDim: dh)
    var qOffset = 0
    for (i, qp0) in qPieces.enumerated() {
      let qView = HeadsView(base: q.baseAddress! + qOffset * hd, batchStride: localQ * hd, rowStride: hd, headDim: dh)
      let g = AttentionGeometry(
        batch: batch, seqQ: qp0.count, seqKV: piece.count, qStart: qp0.lowerBound,
        kvStart: piece.lowerBound, heads: call.heads, headBase: call.headBase, kvHeadOf: call.kvHeadOf)
      accumulateSoftmaxAttention(
        q: qView, k: kView, v: vView, geometry: g, pipeline: call.pipeline,
        blockQ: call.blockQ, blockKV: call.blockKV, skipMaskedTiles: true, state: &states[i],
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
