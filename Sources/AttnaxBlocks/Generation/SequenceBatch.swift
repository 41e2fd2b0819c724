import AttnaxDist
import AttnaxFormats
import Synchronization

// A forward pass over several independent sequences at once, each continuing its own KV cache:
// what a server's step runs (continuous batching). The rows of all sequences are stacked into one
// (1, rows, D) tensor, so every linear layer reads its weights once for all of them and the
// tensor-parallel group sums once per sub-layer; only attention is per sequence, each one's queries
// against its own cache. Nothing mixes rows of different sequences, and with row-invariant products
// (``TransformerModel/rowInvariantRows``) a sequence's numbers do not depend on the others.

/// One sequence of a batched step: its KV caches (one per layer, batch 1) and the tokens it adds,
/// at positions `caches[0].length...` (a prefill chunk, or one decode token).
public struct CachedSequence {
  /// One cache per layer, batch 1 (``BlockStack/makeCaches(batch:maxLen:)``).
  public let caches: [KVCache]
  /// The tokens this step appends.
  public let tokens: [Int32]

  /// A sequence of the step.
  public init(caches: [KVCache], tokens: [Int32]) { self.caches = caches; self.tokens = tokens }
}

extension TransformerModel {
  /// Final hidden states (N, D) of the last new token of each of N sequences, which run as one
  /// batch: embeddings, every block (each sequence's attention against its own cache, which grows
  /// by its tokens) and the final norm. Every rank of the grid takes part; the rows are replicated
  /// over the cp ring (a sharded cache is read by split-KV attention).
  /// - Throws: ``AttnaxError/input(name:message:)`` for an empty sequence or a token outside the
  ///   vocabulary, ``AttnaxError/cache(message:)`` when a cache would overflow.
  public func lastHidden(batch: [CachedSequence]) throws -> Tensor {
    guard stage.count == 1, let hidden = try stageLastHidden(batch: batch) else {
      throw AttnaxError.layout(message: "lastHidden(batch:) runs the whole model; a pipeline stage runs stageLastHidden")
    }
    return hidden
  }

  /// This pipeline stage's part of ``lastHidden(batch:)``: the first stage embeds the tokens,
  /// the others receive the previous stage's rows (1, rows, D), the stage's layers run; the
  /// last stage returns the final hidden states of each sequence's last token, the others send
  /// their rows on and return nil. `microbatch` tags the transfers (several in flight).
  public func stageLastHidden(batch: [CachedSequence], microbatch: Int = 0) throws -> Tensor? {
    guard config.blockConfig.block != .decoder, config.blockConfig.attentionType.isSoftmax else {
      throw AttnaxError.input(name: "model", message: "batched steps need decoder-only blocks with softmax attention")
    }
    if let empty = batch.firstIndex(where: \.tokens.isEmpty) {
      throw AttnaxError.input(name: "tokens", message: "sequence \(empty + 1) of the step has no tokens")
    }
    let n = batch.reduce(0) { $0 + $1.tokens.count }
    let x = try stageInput(shape: [1, n, config.dModel], microbatch: microbatch) { embeddings in
      let ids = IntTensor(shape: [1, n], data: batch.flatMap(\.tokens))
      let positions = IntTensor(
        shape: [1, n],
        data: batch.flatMap { s in (0..<s.tokens.count).map { Int32(s.caches[0].length + $0) } })
      let layout = SequenceLayout(length: n, parts: stack.cp.size, kind: .replicated)
      return try embeddings(ids, positions: positions, tokenTypes: nil, start: 0, layout: layout, rank: stack.cp.rank)
    }
    var ends: [Range<Int>] = []
    var start = 0
    for s in batch { ends.append(start..<(start + s.tokens.count)); start += s.tokens.count }
    let y = try stack(x, batch: batch, rows: ends)
    guard stage.isLast else {
      try stage.sendActivations(y, microbatch: microbatch)
      return nil
    }
    let d = config.dModel
    var last = [Float]()
    last.reserveCapacity(batch.count * d)
    for r in ends { last += y.data[((r.upperBound - 1) * d)..<(r.upperBound * d)] }
    let h = Tensor(shape: [batch.count, d], data: last)
    return finalNorm.map { $0(h) } ?? h
  }

  /// How many rows a product may hold with every row's result independent of the others: the
  /// integer kernels over blocks compute each row alone up to ``blockStreamingRows``, the
  /// float32 streaming kernel up to ``streamingRows`` (beyond, a GEMM may sum in another order).
  /// A server splits its decode rows into groups of this many so that a request's tokens do not
  /// depend on what else runs.
  public var rowInvariantRows: Int {
    weightInventory.bytesByType.keys.contains("f32") ? streamingRows : blockStreamingRows
  }
}

extension BlockStack {
  /// Runs every layer on the stacked rows `x` (1, rows, D) of `batch`, sequence i holding rows
  /// `rows[i]`; each layer's attention appends to and reads sequence i's cache of that layer.
  func callAsFunction(_ x: Tensor, batch: [CachedSequence], rows: [Range<Int>]) throws -> Tensor {
    var h = x
    for (i, layer) in layers.enumerated() {
      let views = zip(batch, rows).map { CachedRows(cache: $0.caches[i], rows: $1) }
      h = try layer(h, batch: views, cp: cp)
    }
    return h
  }
}

/// The rows of one sequence among a batch's stacked rows, and its cache of the current layer.
struct CachedRows {
  let cache: KVCache
  let rows: Range<Int>
}

extension TransformerBlock {
  /// Self-attention (per sequence) then the FFN over the stacked rows of a batch.
  func callAsFunction(_ x: Tensor, batch: [CachedRows], cp: Communicator) throws -> Tensor {
    let h = try residual(x, ln1) { try selfAttn($0, batch: batch, cp: cp, residual: $1) }
    return try residual(h, ln2) { try ffn($0, residual: $1) }
  }
}

extension MultiHeadAttention {
  /// Q, K and V of all stacked rows in one product each, then each sequence's queries against its
  /// own cache (its keys and values appended first, RoPE at its own positions), then one output
  /// projection (one allreduce) for all rows.
  ///
  /// Without a cp ring the sequences' attention runs on the threads at once, one sequence per
  /// thread at a time (a decode step's 16 small attentions would otherwise run one after the
  /// other while the other thread waits); each sequence's numbers are those of its attention
  /// alone, which sums its key blocks in the same order on any number of threads.
  func callAsFunction(_ x: consuming Tensor, batch: [CachedRows], cp: Communicator, residual: Tensor?) throws -> Tensor {
    let n = x.shape[1]
    let qkv = ColumnParallelLinear.apply([query, key, value], to: x)
    x = Tensor(zeros: [0])
    let wq = qkv[0].shape[2]
    var attended = [Float](repeating: 0, count: n * wq)
    func attend(_ seq: CachedRows) throws -> Tensor {
      var q = qkv[0].rows(seq.rows), k = qkv[1].rows(seq.rows)
      let v = qkv[2].rows(seq.rows)
      let layout = SequenceLayout(length: seq.rows.count, parts: cp.size, kind: .replicated)
      let ctx = SequenceContext(cp: cp, q: layout, kv: layout)
      let past = seq.cache.length, inputs = AttentionInputs()
      if let rope { try rotate(&q, &k, rope: rope, ctx: ctx, inputs: inputs, past: past, selfAttention: true) }
      return try attendCached(q: q, k: k, v: v, cache: seq.cache, ctx: ctx, past: past, inputs: inputs)
    }
    if cp.size == 1 && batch.count > 1 {
      // No collective inside: the sequences may run on any thread, in any order.
      let failure = Mutex<Error?>(nil)
      attended.withUnsafeMutableBufferPointer { out in
        let base = out.baseAddress!
        RowParallel.forEach(rows: batch.count, work: .infinity, minRows: 1, chunks: batch.count) { range in
          for seq in batch[range] {
            do {
              let a = try attend(seq)
              a.data.withUnsafeBufferPointer { (base + seq.rows.lowerBound * wq).update(from: $0.baseAddress!, count: a.count) }
            } catch { failure.withLock { $0 = $0 ?? error } }
          }
        }
      }
      if let error = failure.withLock({ $0 }) { throw error }
    } else {
      for seq in batch {
        let a = try attend(seq)
        attended.replaceSubrange((seq.rows.lowerBound * wq)..<(seq.rows.upperBound * wq), with: a.data)
      }
    }
    return try output(Tensor(shape: [1, n, wq], data: attended), residual: residual)
  }
}

extension Tensor {
  /// Rows `rows` of the middle axis of a (1, S, F) tensor, as (1, rows.count, F).
  func rows(_ rows: Range<Int>) -> Tensor {
    let f = shape[2]
    return Tensor(shape: [1, rows.count, f], data: Array(data[(rows.lowerBound * f)..<(rows.upperBound * f)]))
  }
}
