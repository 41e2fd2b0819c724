import AttnaxDist
import AttnaxFormats

/// Sentence embeddings from an encoder model (sentence-transformers style): the final hidden
/// states pooled as the config says (mean over the real tokens, or the first token), then
/// L2-normalised when `normalize_embeddings`.
///
/// Sentences of different lengths are sorted by length and run in batches padded on the right
/// with a key-padding mask, so padding never enters attention or the mean; the results come
/// back in the input order, each identical to the sentence's own unpadded run up to rounding.
public struct SentenceEmbedder: Sendable {
  /// The encoder.
  public let model: TransformerModel
  /// Sentences per forward at most.
  public let batchSize: Int

  /// An embedder over `model` (an encoder with `pooling`); throws naming the config field.
  public init(model: TransformerModel, batchSize: Int = 32) throws {
    guard model.config.model == .transformerEncoder else {
      throw AttnaxError.config(
        field: "model",
        message: "'\(model.config.model.rawValue)' is not an encoder: sentence embeddings need a transformer_encoder")
    }
    guard model.config.pooling != .none else {
      throw AttnaxError.config(
        field: "pooling", message: "is 'none': this model directory does not say how to pool (mean or cls)")
    }
    guard batchSize >= 1 else { throw AttnaxError.input(name: "batch-size", message: "must be at least 1, got \(batchSize)") }
    self.model = model; self.batchSize = batchSize
  }

  /// Token ids of each sentence (special tokens included) -> one embedding (d_model) each.
  public func embed(_ sentences: [[Int32]]) throws -> [[Float]] {
    if let i = sentences.firstIndex(where: \.isEmpty) {
      throw AttnaxError.input(name: "sentences", message: "sentence \(i + 1) has no tokens")
    }
    let order = sentences.indices.sorted { sentences[$0].count < sentences[$1].count }
    var out = [[Float]](repeating: [], count: sentences.count)
    var start = 0
    while start < order.count {
      let batch = Array(order[start..<min(order.count, start + batchSize)])
      let pooled = try embedBatch(batch.map { sentences[$0] })
      for (i, index) in batch.enumerated() { out[index] = pooled[i] }
      start += batch.count
    }
    return out
  }

  /// One right-padded batch.
  func embedBatch(_ batch: [[Int32]]) throws -> [[Float]] {
    let b = batch.count, s = batch.map(\.count).max()!, d = model.config.dModel
    let pad = Int32(model.config.padTokenID)
    let ids = batch.flatMap { $0 + [Int32](repeating: pad, count: s - $0.count) }
    let padded = batch.contains { $0.count < s }
    let mask =
      padded
      ? MaskTensor(shape: [b, 1, 1, s], data: batch.flatMap { t in (0..<s).map { UInt8($0 < t.count ? 1 : 0) } }) : nil
    let h = try model.hidden(ModelInputs(ids: IntTensor(shape: [b, s], data: ids), mask: mask))
    return (0..<b).map { row in
      let n = batch[row].count
      var e: [Float]
      switch model.config.pooling {
      case .cls, .none:
        e = Array(h.data[(row * s * d)..<(row * s * d + d)])
      case .mean:
        // Sum in Double over the real tokens, then divide (sentence-transformers' mean pooling).
        var acc = [Double](repeating: 0, count: d)
        for t in 0..<n { for j in 0..<d { acc[j] += Double(h.data[(row * s + t) * d + j]) } }
        e = acc.map { Float($0 / Double(n)) }
      }
      if model.config.normalizeEmbeddings {
        let norm = e.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        e = e.map { Float(Double($0) / max(norm, 1e-12)) }
      }
      return e
    }
  }
}
