import AttnaxDist

/// Per-call inputs of one attention sub-layer (names are used in error messages).
public struct AttentionInputs {
  public var mask: MaskTensor?
  public var maskName: String
  public var positionsQ: IntTensor?
  public var positionsKV: IntTensor?
  public var positionsName: String
  /// Resolves `additive_bias` tensor names.
  public var lookup: (String) throws -> Tensor

  public init(mask: MaskTensor? = nil, maskName: String = "mask", positionsQ: IntTensor? = nil,
              positionsKV: IntTensor? = nil, positionsName: String = "position_ids",
              lookup: @escaping (String) throws -> Tensor = { throw AttnaxError.tensor(name: $0, message: "missing") }) {
    self.mask = mask; self.maskName = maskName; self.positionsQ = positionsQ
    self.positionsKV = positionsKV; self.positionsName = positionsName; self.lookup = lookup
  }
}

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
    let d = config.d_model, kvF = config.kvHeads * config.headDim
    query = try ColumnParallelLinear(source, "\(prefix).query_proj", inFeatures: d, outFeatures: d, columns: plan.queryColumns)
    key = try ColumnParallelLinear(source, "\(prefix).key_proj", inFeatures: d, outFeatures: kvF, columns: plan.kvColumns)
    value = try ColumnParallelLinear(source, "\(prefix).value_proj", inFeatures: d, outFeatures: kvF, columns: plan.kvColumns)
    output = try RowParallelLinear(source, "\(prefix).output_proj", inFeatures: d, outFeatures: d, rows: plan.queryColumns, group: group)
    if config.attention_type == .lite {
      let k = try source.full("\(prefix).gate_proj.kernel", [config.headDim, 1]).data
      let b = try source.full("\(prefix).gate_proj.bias", [1]).data[0]
      gate = (k, b)
    } else {
      gate = nil
    }
    rope = config.use_rope ? RoPE(headDim: config.headDim, base: config.rope_base, maxPositions: config.rope_max_positions) : nil
  }

  /// x: (B, Sq, D); `context` (B, Skv, D) for cross-attention; `cache` for self-attention steps.
  /// Returns (B, Sq, D), already summed over the tensor-parallel group.
  public func callAsFunction(_ x: Tensor, context: Tensor? = nil, inputs: AttentionInputs, cache: KVCache? = nil) throws -> Tensor {
    precondition(cache == nil || context == nil, "KV cache is for self-attention only")
    let batch = x.shape[0], seqQ = x.shape[1], dh = config.headDim
    let src = context ?? x
    var q = query(x), k = key(src), v = value(src)
    let past = cache?.length ?? 0
    if let rope {
      let pq = inputs.positionsQ ?? RoPE.defaultPositions(batch: batch, seq: seqQ, start: past)
      try rope.apply(&q, heads: plan.queryHeads.count, positions: pq, name: inputs.positionsName)
      let srcLen = src.shape[1]
      let pk = inputs.positionsKV ?? (context == nil ? pq : RoPE.defaultPositions(batch: batch, seq: srcLen, start: 0))
      try rope.apply(&k, heads: plan.kvHeads.count, positions: pk, name: inputs.positionsName)
    }
    let attended: Tensor
    if let cache {
      try cache.append(keys: k, values: v)
      attended = try cache.keys.withUnsafeBufferPointer { kp in
        try cache.values.withUnsafeBufferPointer { vp in
          let kv = HeadsView(base: kp.baseAddress!, batchStride: cache.maxLen * cache.width, rowStride: cache.width, headDim: dh)
          let vv = HeadsView(base: vp.baseAddress!, batchStride: cache.maxLen * cache.width, rowStride: cache.width, headDim: dh)
          return try attend(q: q, k: kv, v: vv, batch: batch, seqQ: seqQ, seqKV: cache.length, qStart: past, inputs: inputs)
        }
      }
    } else {
      let seqKV = src.shape[1]
      attended = try k.data.withUnsafeBufferPointer { kp in
        try v.data.withUnsafeBufferPointer { vp in
          let w = plan.kvHeads.count * dh
          let kv = HeadsView(base: kp.baseAddress!, batchStride: seqKV * w, rowStride: w, headDim: dh)
          let vv = HeadsView(base: vp.baseAddress!, batchStride: seqKV * w, rowStride: w, headDim: dh)
          return try attend(q: q, k: kv, v: vv, batch: batch, seqQ: seqQ, seqKV: seqKV, qStart: 0, inputs: inputs)
        }
      }
    }
    return try output(attended)
  }

  /// The backend dispatch: one shared softmax pipeline (standard = one block), linear, or lite.
  func attend(q: Tensor, k: HeadsView, v: HeadsView, batch: Int, seqQ: Int, seqKV: Int, qStart: Int, inputs: AttentionInputs) throws -> Tensor {
    let dh = config.headDim, heads = plan.queryHeads.count
    let geometry = AttentionGeometry(
      batch: batch, seqQ: seqQ, seqKV: seqKV, qStart: qStart, kvStart: 0, heads: heads,
      headBase: plan.queryHeads.lowerBound, kvHeadOf: (0..<heads).map { plan.localKVHead(forLocalQueryHead: $0) })
    let mask = try inputs.mask.map {
      try Broadcast4(name: inputs.maskName, data: $0.data, shape: $0.shape, batch: batch, heads: config.num_heads,
                     rows: seqQ, cols: seqKV, rowOrigin: qStart)
    }
    return try q.data.withUnsafeBufferPointer { qp in
      let qv = HeadsView(base: qp.baseAddress!, batchStride: seqQ * heads * dh, rowStride: heads * dh, headDim: dh)
      switch config.attention_type {
      case .linear:
        guard seqQ == seqKV, qStart == 0 else {
          throw AttnaxError.input(name: "x", message: "linear attention needs seq_q == seq_kv and no KV cache (got \(seqQ) queries, \(seqKV) keys)")
        }
        let c = config.linear_attention_chunk_size
        guard seqQ % c == 0 else {
          throw AttnaxError.input(name: "x", message: "sequence length \(seqQ) is not divisible by linear_attention_chunk_size \(c)")
        }
        var state = LinearAttentionState(batch: batch, heads: heads, headDim: dh)
        let keyMask = mask.map { m in
          { (b: Int, h: Int, j: Int) -> Bool in m.data[b * m.strides.b + h * m.strides.h + j * m.strides.k] != 0 }
        }
        return linearAttention(q: qv, k: k, v: v, geometry: geometry, chunk: c, keyMask: keyMask, state: &state)
      case .lite:
        return liteAttention(q: qv, k: k, v: v, geometry: geometry, gateKernel: gate!.kernel, gateBias: gate!.bias, mask: mask)
      case .standard, .memory_efficient, .flash, .pallas_flash:
        let pipeline = try ScorePipeline(
          window: isSelf ? config.attention_window : nil, specs: isSelf ? config.score_mods : [],
          numHeads: config.num_heads, batch: batch, mask: mask, biasRows: seqQ, biasRowOrigin: qStart,
          totalKV: seqKV, lookup: inputs.lookup)
        let bs = config.attention_block_size
        let blocked = config.attention_type != .standard && !(seqQ <= bs && seqKV <= bs)
        var state = SoftmaxState(batch: batch, heads: heads, seqQ: seqQ, headDim: dh)
        accumulateSoftmaxAttention(
          q: qv, k: k, v: v, geometry: geometry, pipeline: pipeline,
          blockQ: blocked ? bs : seqQ, blockKV: blocked ? bs : seqKV, skipMaskedTiles: blocked, state: &state)
        return state.finalize(epsilon: blocked ? 1e-10 : 0)
      }
    }
  }
}
