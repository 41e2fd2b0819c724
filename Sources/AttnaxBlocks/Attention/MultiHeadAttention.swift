import AttnaxFormats
import AttnaxDist

/// attnax `MultiHeadAttention`, sharded by heads over the tensor-parallel group: Q/K/V are
/// column-parallel (this rank's heads), the output projection is row-parallel (one allreduce).
public struct MultiHeadAttention: @unchecked Sendable {
  public let config: BlockConfig
  public let plan: ShardingPlan
  /// Self-attention gets `attention_window` and `score_mods`; cross-attention gets neither.
  public let isSelf: Bool
  let query, key, value: ColumnParallelLinear
  let output: RowParallelLinear
  let gate: (kernel: [Float], bias: Float)?
  let rope: RoPE?

  public init(_ source: WeightSource, prefix: String, config: BlockConfig, plan: ShardingPlan, isSelf: Bool, group: Communicator) throws {
    self.config = config; self.plan = plan; self.isSelf = isSelf
    let d = config.dModel, kvF = config.kvHeads * config.headDim
    let bias = config.useBias
    query = try ColumnParallelLinear(source, "\(prefix).query_proj", inFeatures: d, outFeatures: d, columns: plan.queryColumns, bias: bias)
    key = try ColumnParallelLinear(source, "\(prefix).key_proj", inFeatures: d, outFeatures: kvF, columns: plan.kvColumns, bias: bias)
    value = try ColumnParallelLinear(source, "\(prefix).value_proj", inFeatures: d, outFeatures: kvF, columns: plan.kvColumns, bias: bias)
    output = try RowParallelLinear(
      source, "\(prefix).output_proj", inFeatures: d, outFeatures: d, rows: plan.queryColumns, group: group, bias: bias)
    if config.attentionType == .lite {
      let k = try source.full("\(prefix).gate_proj.kernel", [config.headDim, 1]).data
      let b = try source.full("\(prefix).gate_proj.bias", [1]).data[0]
      gate = (k, b)
    } else {
      gate = nil
    }
    rope = config.useRoPE ? RoPE(headDim: config.headDim, base: config.ropeBase, maxPositions: config.ropeMaxPositions) : nil
  }

  /// x: (B, Sq_local, D) rows of this rank per `sequence.q`; `context` (B, Skv_local, D) for
  /// cross-attention per `sequence.kv`; `cache` for self-attention steps (rows not sharded).
  /// Masks, positions and biases in `inputs` are global. Returns (B, Sq_local, D), summed over
  /// the tensor-parallel group.
  /// `x` is consumed: once projected it is released, which keeps the ring's peak memory low.
  public func callAsFunction(_ x: consuming Tensor, context: Tensor? = nil, inputs: AttentionInputs, cache: KVCache? = nil,
                             sequence: SequenceContext? = nil, residual: Tensor? = nil) throws -> Tensor {
    func output(_ attended: Tensor) throws -> Tensor { try self.output(attended, residual: residual) }
    precondition(cache == nil || context == nil, "KV cache is for self-attention only")
    let batch = x.shape[0], seqQ = x.shape[1], dh = config.headDim
    let srcLen = context?.shape[1] ?? seqQ
    let ctx = sequence ?? .single(q: seqQ, kv: srcLen)
    var q = query(x)
    var k: Tensor, v: Tensor
    if let context { k = key(context); v = value(context) } else { k = key(x); v = value(x) }
    x = Tensor(zeros: [0])  // release the normed input: only q, k, v are needed from here
    let past = cache?.length ?? inputs.positionStart
    let qRank = ctx.q.isSharded ? ctx.cp.rank : 0, kvRank = ctx.kv.isSharded ? ctx.cp.rank : 0
    if let rope {
      func local(_ p: IntTensor?, _ layout: SequenceLayout, _ r: Int, _ n: Int, start: Int) -> IntTensor {
        if let p { return layout.scatter(p, rank: r) }
        let rows = layout.globalRows(of: r)
        return IntTensor(shape: [batch, n], data: (0..<batch).flatMap { _ in rows.map { Int32(start + $0) } })
      }
      let pq = local(inputs.positionsQ, ctx.q, qRank, seqQ, start: past)
      try rope.apply(&q, heads: plan.queryHeads.count, positions: pq, name: inputs.positionsName)
      let pk = context == nil ? pq : local(inputs.positionsKV, ctx.kv, kvRank, srcLen, start: 0)
      try rope.apply(&k, heads: plan.kvHeads.count, positions: pk, name: inputs.positionsKVName ?? inputs.positionsName)
    }
    if let cache {
      try cache.append(keys: k, values: v)
      if cache.parts > 1 {
        return try output(try attendShardedCache(q: q, cache: cache, batch: batch, seqQ: seqQ, past: past, cp: ctx.cp, inputs: inputs))
      }
      let attended = try cache.keys.withUnsafeBufferPointer { kp in
        try cache.values.withUnsafeBufferPointer { vp in
          let kv = HeadsView(base: kp.baseAddress!, batchStride: cache.capacity * cache.width, rowStride: cache.width, headDim: dh)
          let vv = HeadsView(base: vp.baseAddress!, batchStride: cache.capacity * cache.width, rowStride: cache.width, headDim: dh)
          return try attend(q: q, k: kv, v: vv, batch: batch, seqQ: seqQ, seqKV: cache.length, qStart: past, inputs: inputs)
        }
      }
      return try output(attended)
    }
    if ctx.ringSize == 1 && !ctx.q.isSharded {
      let seqKV = srcLen
      let attended = try k.data.withUnsafeBufferPointer { kp in
        try v.data.withUnsafeBufferPointer { vp in
          let w = plan.kvHeads.count * dh
          let kv = HeadsView(base: kp.baseAddress!, batchStride: seqKV * w, rowStride: w, headDim: dh)
          let vv = HeadsView(base: vp.baseAddress!, batchStride: seqKV * w, rowStride: w, headDim: dh)
          return try attend(q: q, k: kv, v: vv, batch: batch, seqQ: seqQ, seqKV: seqKV, qStart: 0, inputs: inputs)
        }
      }
      return try output(attended)
    }
    return try output(try attendSharded(q: q, k: &k, v: &v, batch: batch, ctx: ctx, inputs: inputs))
  }

  var kvHeadOf: [Int] { (0..<plan.queryHeads.count).map { plan.localKVHead(forLocalQueryHead: $0) } }

  func broadcastMask(_ inputs: AttentionInputs, batch: Int, rows: Int, cols: Int, rowOrigin: Int) throws -> Broadcast4<UInt8>? {
    try inputs.mask.map {
      try Broadcast4(name: inputs.maskName, data: $0.data, shape: $0.shape, batch: batch, heads: config.numHeads,
                     rows: rows, cols: cols, rowOrigin: rowOrigin)
    }
  }

  func pipeline(_ inputs: AttentionInputs, mask: Broadcast4<UInt8>?, batch: Int, rows: Int, rowOrigin: Int, totalKV: Int) throws -> ScorePipeline {
    try ScorePipeline(
      window: isSelf ? config.attentionWindow : nil, specs: isSelf ? config.scoreMods : [],
      numHeads: config.numHeads, batch: batch, mask: mask, biasRows: rows, biasRowOrigin: rowOrigin,
      totalKV: totalKV, lookup: inputs.lookup)
  }

  func checkLinear(seqQ: Int, seqKV: Int, qStart: Int) throws {
    guard seqQ == seqKV, qStart == 0 else {
      throw AttnaxError.input(name: "x", message: "linear attention needs seq_q == seq_kv and no KV cache (got \(seqQ) queries, \(seqKV) keys)")
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
  func attend(q: Tensor, k: HeadsView, v: HeadsView, batch: Int, seqQ: Int, seqKV: Int, qStart: Int, inputs: AttentionInputs) throws -> Tensor {
    let dh = config.headDim, heads = plan.queryHeads.count
    let geometry = AttentionGeometry(
      batch: batch, seqQ: seqQ, seqKV: seqKV, qStart: qStart, kvStart: 0, heads: heads,
      headBase: plan.queryHeads.lowerBound, kvHeadOf: kvHeadOf)
    let mask = try broadcastMask(inputs, batch: batch, rows: seqQ, cols: seqKV, rowOrigin: qStart)
    return try q.data.withUnsafeBufferPointer { qp in
      let qv = HeadsView(base: qp.baseAddress!, batchStride: seqQ * heads * dh, rowStride: heads * dh, headDim: dh)
      switch config.attentionType {
      case .linear:
        try checkLinear(seqQ: seqQ, seqKV: seqKV, qStart: qStart)
        var state = LinearAttentionState(batch: batch, heads: heads, headDim: dh)
        return linearAttention(q: qv, k: k, v: v, geometry: geometry, chunk: config.linearAttentionChunkSize,
                               keyMask: Self.keyMask(mask), state: &state)
      case .lite:
        return liteAttention(q: qv, k: k, v: v, geometry: geometry, gateKernel: gate!.kernel, gateBias: gate!.bias, mask: mask)
      case .standard, .memoryEfficient, .flash, .pallasFlash:
        let pipe = try pipeline(inputs, mask: mask, batch: batch, rows: seqQ, rowOrigin: qStart, totalKV: seqKV)
        let bs = config.attentionBlockSize
        let blocked = config.attentionType != .standard && !(seqQ <= bs && seqKV <= bs)
        var state = SoftmaxState(batch: batch, heads: heads, seqQ: seqQ, headDim: dh)
        accumulateSoftmaxAttention(
          q: qv, k: k, v: v, geometry: geometry, pipeline: pipe,
          blockQ: blocked ? bs : seqQ, blockKV: blocked ? bs : seqKV, skipMaskedTiles: blocked, state: &state)
        return state.finalize(epsilon: blocked ? 1e-10 : 0)
      }
    }
  }

  /// A KV-cache step whose cache is sharded along the sequence over the cp group (split-KV /
  /// flash-decoding): every rank attends the (replicated) queries to its own cached runs, then
  /// one allgather merges the partial (max, sum, output) by the online-softmax rule.
  func attendShardedCache(q: Tensor, cache: KVCache, batch: Int, seqQ: Int, past: Int, cp: Communicator, inputs: AttentionInputs) throws -> Tensor {
    let dh = config.headDim, heads = plan.queryHeads.count
    let total = cache.length
    let mask = try broadcastMask(inputs, batch: batch, rows: seqQ, cols: total, rowOrigin: past)
    let pipe = try pipeline(inputs, mask: mask, batch: batch, rows: seqQ, rowOrigin: past, totalKV: total)
    let bs = config.attentionBlockSize
    let blocked = config.attentionType != .standard && !(seqQ <= bs && total <= bs)
    var state = SoftmaxState(batch: batch, heads: heads, seqQ: seqQ, headDim: dh)
    q.data.withUnsafeBufferPointer { qp in
      cache.keys.withUnsafeBufferPointer { kp in
        cache.values.withUnsafeBufferPointer { vp in
          let qv = HeadsView(base: qp.baseAddress!, batchStride: seqQ * heads * dh, rowStride: heads * dh, headDim: dh)
          let stride = cache.capacity * cache.width
          for run in cache.runs {
            let kv = HeadsView(base: kp.baseAddress! + run.local * cache.width, batchStride: stride, rowStride: cache.width, headDim: dh)
            let vv = HeadsView(base: vp.baseAddress! + run.local * cache.width, batchStride: stride, rowStride: cache.width, headDim: dh)
            let g = AttentionGeometry(batch: batch, seqQ: seqQ, seqKV: run.count, qStart: past, kvStart: run.global,
                                      heads: heads, headBase: plan.queryHeads.lowerBound, kvHeadOf: kvHeadOf)
            accumulateSoftmaxAttention(q: qv, k: kv, v: vv, geometry: g, pipeline: pipe,
                                       blockQ: blocked ? bs : Int.max, blockKV: blocked ? bs : Int.max,
                                       skipMaskedTiles: true, state: &state)
          }
        }
      }
    }
    try state.merge(over: cp)
    return state.finalize(epsilon: blocked ? 1e-10 : 0)
  }

  /// Rows sharded over the cp ring: ring attention for softmax backends, a carried state for
  /// linear attention, and a gather for lite attention (its softmax runs over the whole query axis).
  func attendSharded(q: Tensor, k: inout Tensor, v: inout Tensor, batch: Int, ctx: SequenceContext, inputs: AttentionInputs) throws -> Tensor {
    let dh = config.headDim, heads = plan.queryHeads.count
    let totalQ = ctx.q.length, totalKV = ctx.kv.length
    let mask = try broadcastMask(inputs, batch: batch, rows: totalQ, cols: totalKV, rowOrigin: 0)
    switch config.attentionType {
    case .lite:
      let fq = try gatherSequence(q, layout: ctx.q, cp: ctx.cp)
      let fk = try gatherSequence(k, layout: ctx.kv, cp: ctx.cp), fv = try gatherSequence(v, layout: ctx.kv, cp: ctx.cp)
      let wkv = fk.shape[2]
      let full = fq.data.withUnsafeBufferPointer { qp in fk.data.withUnsafeBufferPointer { kp in fv.data.withUnsafeBufferPointer { vp in
        let g = AttentionGeometry(batch: batch, seqQ: totalQ, seqKV: totalKV, qStart: 0, kvStart: 0, heads: heads,
                                  headBase: plan.queryHeads.lowerBound, kvHeadOf: kvHeadOf)
        return liteAttention(
          q: HeadsView(base: qp.baseAddress!, batchStride: totalQ * heads * dh, rowStride: heads * dh, headDim: dh),
          k: HeadsView(base: kp.baseAddress!, batchStride: totalKV * wkv, rowStride: wkv, headDim: dh),
          v: HeadsView(base: vp.baseAddress!, batchStride: totalKV * wkv, rowStride: wkv, headDim: dh),
          geometry: g, gateKernel: gate!.kernel, gateBias: gate!.bias, mask: mask)
      }}}
      return ctx.q.scatter(full, rank: ctx.cp.rank)
    case .linear:
      try checkLinear(seqQ: totalQ, seqKV: totalKV, qStart: 0)
      guard ctx.q.kind == .contiguous, ctx.kv.kind == .contiguous, ctx.q == ctx.kv else {
        throw AttnaxError.layout(message: "linear attention under cp needs the same contiguous layout for queries and keys")
      }
      let piece = ctx.q.pieces(of: ctx.cp.rank)[0]
      let n = piece.count, wkv = k.shape[2]
      return try q.data.withUnsafeBufferPointer { qp in try k.data.withUnsafeBufferPointer { kp in try v.data.withUnsafeBufferPointer { vp in
        let g = AttentionGeometry(batch: batch, seqQ: n, seqKV: n, qStart: piece.lowerBound, kvStart: piece.lowerBound,
                                  heads: heads, headBase: plan.queryHeads.lowerBound, kvHeadOf: kvHeadOf)
        let kv = HeadsView(base: kp.baseAddress!, batchStride: n * wkv, rowStride: wkv, headDim: dh)
        let vv = HeadsView(base: vp.baseAddress!, batchStride: n * wkv, rowStride: wkv, headDim: dh)
        let keyMask = Self.keyMask(mask).map { f in { (b: Int, h: Int, j: Int) in f(b, h, j) } }
        var state = try linearAttentionCarry(k: kv, v: vv, geometry: g, keyMask: keyMask, cp: ctx.cp)
        // Inside linearAttention key rows are local; shift them to global for the mask.
        let localMask = keyMask.map { f in { (b: Int, h: Int, j: Int) in f(b, h, piece.lowerBound + j) } }
        return linearAttention(
          q: HeadsView(base: qp.baseAddress!, batchStride: n * heads * dh, rowStride: heads * dh, headDim: dh),
          k: kv, v: vv, geometry: g, chunk: config.linearAttentionChunkSize, keyMask: localMask, state: &state)
      }}}
    case .standard, .memoryEfficient, .flash, .pallasFlash:
      let pipe = try pipeline(inputs, mask: mask, batch: batch, rows: totalQ, rowOrigin: 0, totalKV: totalKV)
      let bs = config.attentionBlockSize
      let blocked = config.attentionType != .standard && !(totalQ <= bs && totalKV <= bs)
      return try ringSoftmaxAttention(
        q: q, k: &k, v: &v, sequence: ctx, heads: heads, headBase: plan.queryHeads.lowerBound, kvHeadOf: kvHeadOf,
        headDim: dh, pipeline: pipe, blockQ: blocked ? bs : Int.max, blockKV: blocked ? bs : Int.max, blocked: blocked)
    }
  }
}
