import AttnaxDist
import AttnaxFormats

// The attention paths of ``MultiHeadAttention``, by where the rows are:
// - every row on this rank: one softmax pipeline (standard = one block, flash family = tiles),
//   linear attention, or lite attention;
// - rows split over the cp ring: ring attention (softmax), a carried state (linear), a gather (lite);
// - a KV-cache step: the step's rows split over the ring (a prefill: ring attention over every
//   rank's cached rows) or replicated (a decode step: each rank attends to its own cached rows,
//   then one allgather merges the partial softmax states: split-KV).

extension MultiHeadAttention {
  /// q (B, Sq, Hq·Dh), k and v (B, Skv, Hkv·Dh) as head views for the duration of `body`.
  func withHeads<R>(q: Tensor, k: Tensor, v: Tensor, _ body: (HeadsView, HeadsView, HeadsView) throws -> R) rethrows -> R {
    let dh = config.headDim, wq = q.shape[2], wkv = k.shape[2]
    return try q.data.withUnsafeBufferPointer { qp in
      try k.data.withUnsafeBufferPointer { kp in
        try v.data.withUnsafeBufferPointer { vp in
          try body(
            HeadsView(base: qp.baseAddress!, batchStride: q.shape[1] * wq, rowStride: wq, headDim: dh),
            HeadsView(base: kp.baseAddress!, batchStride: k.shape[1] * wkv, rowStride: wkv, headDim: dh),
            HeadsView(base: vp.baseAddress!, batchStride: v.shape[1] * wkv, rowStride: wkv, headDim: dh))
        }
      }
    }
  }

  func broadcastMask(_ inputs: AttentionInputs, batch: Int, rows: Int, cols: Int, rowOrigin: Int) throws -> Broadcast4<UInt8>? {
    try inputs.mask.map {
      try Broadcast4(
        name: inputs.maskName, data: $0.data, shape: $0.shape, batch: batch, heads: config.numHeads,
        rows: rows, cols: cols, rowOrigin: rowOrigin)
    }
  }

  func pipeline(
    _ inputs: AttentionInputs, mask: Broadcast4<UInt8>?, batch: Int, rows: Int, rowOrigin: Int, totalKV: Int
  ) throws -> ScorePipeline {
    try ScorePipeline(
      window: isSelf ? config.attentionWindow : nil, specs: isSelf ? config.scoreMods : [],
      numHeads: config.numHeads, batch: batch, mask: mask, biasRows: rows, biasRowOrigin: rowOrigin,
      totalKV: totalKV, lookup: inputs.lookup)
  }

  /// The fixed part of a softmax call over `totalQ` × `totalKV` global rows (mask rows from `rowOrigin`).
  func softmaxCall(_ inputs: AttentionInputs, batch: Int, totalQ: Int, totalKV: Int, rowOrigin: Int) throws -> AttentionCall {
    let mask = try broadcastMask(inputs, batch: batch, rows: totalQ, cols: totalKV, rowOrigin: rowOrigin)
    let bs = config.attentionBlockSize
    let blocked = config.attentionType.isBlocked && !(totalQ <= bs && totalKV <= bs)
    return AttentionCall(
      batch: batch, heads: plan.queryHeads.count, headBase: plan.queryHeads.lowerBound, kvHeadOf: kvHeadOf,
      headDim: config.headDim,
      pipeline: try pipeline(inputs, mask: mask, batch: batch, rows: totalQ, rowOrigin: rowOrigin, totalKV: totalKV),
      blockQ: blocked ? bs : Int.max, blockKV: blocked ? bs : Int.max, epsilon: blocked ? 1e-10 : 0)
  }

  func checkLinear(seqQ: Int, seqKV: Int, qStart: Int) throws {
    guard seqQ == seqKV, qStart == 0 else {
      throw AttnaxError.input(
        name: "x", message: "linear attention needs seq_q == seq_kv and no KV cache (got \(seqQ) queries, \(seqKV) keys)")
    }
    let c = config.linearAttentionChunkSize
    guard seqQ % c == 0 else {
      throw AttnaxError.input(name: "x", message: "sequence length \(seqQ) is not divisible by linear_attention_chunk_size \(c)")
    }
  }

  static func keyMask(_ mask: Broadcast4<UInt8>?) -> ((Int, Int, Int) -> Bool)? {
    mask.map { m in { (b: Int, h: Int, j: Int) -> Bool in m.data[m.offset(b: b, h: h, q: m.rowOrigin, k: j)] != 0 } }
  }

  /// The whole sequence on this rank: one shared softmax pipeline (standard = one block), linear, or lite.
  func attend(
    q: HeadsView, k: HeadsView, v: HeadsView, batch: Int, seqQ: Int, seqKV: Int, qStart: Int, inputs: AttentionInputs
  ) throws -> Tensor {
    let dh = config.headDim, heads = plan.queryHeads.count
    let geometry = AttentionGeometry(
      batch: batch, seqQ: seqQ, seqKV: seqKV, qStart: qStart, kvStart: 0, heads: heads,
      headBase: plan.queryHeads.lowerBound, kvHeadOf: kvHeadOf)
    switch config.attentionType {
    case .linear:
      try checkLinear(seqQ: seqQ, seqKV: seqKV, qStart: qStart)
      let mask = try broadcastMask(inputs, batch: batch, rows: seqQ, cols: seqKV, rowOrigin: qStart)
      var state = LinearAttentionState(batch: batch, heads: heads, headDim: dh)
      return linearAttention(
        q: q, k: k, v: v, geometry: geometry, chunk: config.linearAttentionChunkSize,
        keyMask: Self.keyMask(mask), state: &state)
    case .lite:
      let mask = try broadcastMask(inputs, batch: batch, rows: seqQ, cols: seqKV, rowOrigin: qStart)
      return liteAttention(q: q, k: k, v: v, geometry: geometry, gateKernel: gate!.kernel, gateBias: gate!.bias, mask: mask)
    case .standard, .memoryEfficient, .flash, .pallasFlash:
      let call = try softmaxCall(inputs, batch: batch, totalQ: seqQ, totalKV: seqKV, rowOrigin: qStart)
      var state = SoftmaxState(batch: batch, heads: heads, seqQ: seqQ, headDim: dh)
      accumulateSoftmaxAttention(
        q: q, k: k, v: v, geometry: geometry, pipeline: call.pipeline,
        blockQ: min(call.blockQ, seqQ), blockKV: min(call.blockKV, seqKV), skipMaskedTiles: call.blockQ != Int.max,
        state: &state)
      return state.finalize(epsilon: call.epsilon)
    }
  }

  /// A KV-cache step. Rows split over the ring (a prefill): each rank keeps its own rows' K/V
  /// and attends over every rank's cache as it travels the ring. Rows replicated: the cache
  /// stores the step (split over the ring by counts) and every rank attends to its part.
  func attendCached(
    q: Tensor, k: Tensor, v: Tensor, cache: KVCache, ctx: SequenceContext, past: Int,
    inputs: AttentionInputs
  ) throws -> Tensor {
    let batch = q.shape[0], seqQ = q.shape[1]
    if ctx.q.isSharded {
      try cache.appendShard(keys: k, values: v, layout: ctx.q)
      let call = try softmaxCall(inputs, batch: batch, totalQ: ctx.q.length, totalKV: cache.length, rowOrigin: past)
      let qPieces = ctx.q.pieces(of: ctx.cp.rank).map { ($0.lowerBound + past)..<($0.upperBound + past) }
      let shards = cache.ringShards
      let local = shards.buffer(batch: batch, width: cache.width)
      cache.pack(into: local.pointer)
      return try ringSoftmaxAttention(
        q: q, qPieces: qPieces, shards: shards, width: cache.width, cp: ctx.cp, call: call, local: local)
    }
    try cache.append(keys: k, values: v)
    if cache.parts > 1 {
      return try attendShardedCache(q: q, cache: cache, batch: batch, seqQ: seqQ, past: past, cp: ctx.cp, inputs: inputs)
    }
    return try q.data.withUnsafeBufferPointer { qp in
      try cache.keys.withUnsafeBufferPointer { kp in
        try cache.values.withUnsafeBufferPointer { vp in
          let dh = config.headDim, wq = q.shape[2], stride = cache.capacity * cache.width
          return try attend(
            q: HeadsView(base: qp.baseAddress!, batchStride: seqQ * wq, rowStride: wq, headDim: dh),
            k: HeadsView(base: kp.baseAddress!, batchStride: stride, rowStride: cache.width, headDim: dh),
            v: HeadsView(base: vp.baseAddress!, batchStride: stride, rowStride: cache.width, headDim: dh),
            batch: batch, seqQ: seqQ, seqKV: cache.length, qStart: past, inputs: inputs)
        }
      }
    }
  }

  /// A replicated KV-cache step whose cache is sharded along the sequence over the cp group
  /// (split-KV / flash-decoding): every rank attends the queries to its own cached runs, then one
  /// allgather merges the partial (max, sum, output) by the online-softmax rule.
  func attendShardedCache(
    q: Tensor, cache: KVCache, batch: Int, seqQ: Int, past: Int, cp: Communicator, inputs: AttentionInputs
  ) throws -> Tensor {
    let dh = config.headDim, heads = plan.queryHeads.count
    let call = try softmaxCall(inputs, batch: batch, totalQ: seqQ, totalKV: cache.length, rowOrigin: past)
    var state = SoftmaxState(batch: batch, heads: heads, seqQ: seqQ, headDim: dh)
    q.data.withUnsafeBufferPointer { qp in
      cache.keys.withUnsafeBufferPointer { kp in
        cache.values.withUnsafeBufferPointer { vp in
          let qv = HeadsView(base: qp.baseAddress!, batchStride: seqQ * heads * dh, rowStride: heads * dh, headDim: dh)
          let stride = cache.capacity * cache.width
          for run in cache.runs {
            let kv = HeadsView(
              base: kp.baseAddress! + run.local * cache.width, batchStride: stride, rowStride: cache.width, headDim: dh)
            let vv = HeadsView(
              base: vp.baseAddress! + run.local * cache.width, batchStride: stride, rowStride: cache.width, headDim: dh)
            let g = AttentionGeometry(
              batch: batch, seqQ: seqQ, seqKV: run.count, qStart: past, kvStart: run.global,
              heads: heads, headBase: plan.queryHeads.lowerBound, kvHeadOf: kvHeadOf)
            accumulateSoftmaxAttention(
              q: qv, k: kv, v: vv, geometry: g, pipeline: call.pipeline,
              blockQ: call.blockQ, blockKV: call.blockKV, skipMaskedTiles: true, state: &state)
          }
        }
      }
    }
    try state.merge(over: cp)
    return state.finalize(epsilon: call.epsilon)
  }

  /// Rows sharded over the cp ring: ring attention for softmax backends, a carried state for
  /// linear attention, and a gather for lite attention (its softmax runs over the whole query axis).
  func attendSharded(q: Tensor, k: inout Tensor, v: inout Tensor, ctx: SequenceContext, inputs: AttentionInputs) throws -> Tensor
  {
    let batch = q.shape[0], heads = plan.queryHeads.count
    let totalQ = ctx.q.length, totalKV = ctx.kv.length
    switch config.attentionType {
    case .lite:
      let mask = try broadcastMask(inputs, batch: batch, rows: totalQ, cols: totalKV, rowOrigin: 0)
      let fq = try gatherSequence(q, layout: ctx.q, cp: ctx.cp)
      let fk = try gatherSequence(k, layout: ctx.kv, cp: ctx.cp), fv = try gatherSequence(v, layout: ctx.kv, cp: ctx.cp)
      let g = AttentionGeometry(
        batch: batch, seqQ: totalQ, seqKV: totalKV, qStart: 0, kvStart: 0, heads: heads,
        headBase: plan.queryHeads.lowerBound, kvHeadOf: kvHeadOf)
      let full = withHeads(q: fq, k: fk, v: fv) { qv, kv, vv in
        liteAttention(q: qv, k: kv, v: vv, geometry: g, gateKernel: gate!.kernel, gateBias: gate!.bias, mask: mask)
      }
      return ctx.q.scatter(full, rank: ctx.cp.rank)
    case .linear:
      try checkLinear(seqQ: totalQ, seqKV: totalKV, qStart: 0)
      guard ctx.q.kind == .contiguous, ctx.kv.kind == .contiguous, ctx.q == ctx.kv else {
        throw AttnaxError.layout(message: "linear attention under cp needs the same contiguous layout for queries and keys")
      }
      let mask = try broadcastMask(inputs, batch: batch, rows: totalQ, cols: totalKV, rowOrigin: 0)
      let piece = ctx.q.pieces(of: ctx.cp.rank)[0]
      let g = AttentionGeometry(
        batch: batch, seqQ: piece.count, seqKV: piece.count, qStart: piece.lowerBound,
        kvStart: piece.lowerBound, heads: heads, headBase: plan.queryHeads.lowerBound, kvHeadOf: kvHeadOf)
      let keyMask = Self.keyMask(mask)
      // Inside linearAttention key rows are local; shift them to global for the mask.
      let localMask = keyMask.map { f in { (b: Int, h: Int, j: Int) in f(b, h, piece.lowerBound + j) } }
      return try withHeads(q: q, k: k, v: v) { qv, kv, vv in
        var state = try linearAttentionCarry(k: kv, v: vv, geometry: g, keyMask: keyMask, cp: ctx.cp)
        return linearAttention(
          q: qv, k: kv, v: vv, geometry: g, chunk: config.linearAttentionChunkSize, keyMask: localMask, state: &state)
      }
    case .standard, .memoryEfficient, .flash, .pallasFlash:
      let call = try softmaxCall(inputs, batch: batch, totalQ: totalQ, totalKV: totalKV, rowOrigin: 0)
      let shards = RingShards(layout: ctx.kv), width = k.shape[2], n = k.count
      let local = shards.buffer(batch: batch, width: width)
      _ = UnsafeMutableBufferPointer(rebasing: local.pointer[0..<n]).update(fromContentsOf: k.data)
      _ = UnsafeMutableBufferPointer(rebasing: local.pointer[n..<(2 * n)]).update(fromContentsOf: v.data)
      k = Tensor(zeros: [0]); v = Tensor(zeros: [0])  // the ring buffer holds them from here
      return try ringSoftmaxAttention(
        q: q, qPieces: ctx.q.pieces(of: ctx.q.isSharded ? ctx.cp.rank : 0), shards: shards, width: width,
        cp: ctx.cp, call: call, local: local)
    }
  }
}
