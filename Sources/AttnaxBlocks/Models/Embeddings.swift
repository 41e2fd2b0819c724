import AttnaxDist
import AttnaxFormats
import Foundation

/// What turns token ids into the first hidden states: the token embedding (vocab-parallel),
/// positions (attnax's sinusoidal table or a learned one; RoPE acts inside attention instead),
/// token types, and the optional embedding norm (BERT's).
///
/// ids (B, S) -> (B, S, d_model), identical on every rank.
public struct Embeddings: Sendable {
  /// The model's configuration.
  public let config: TransformerConfig
  /// `token_embed.embed.embedding`, split by vocabulary rows over tp.
  public let tokens: VocabParallelEmbedding
  /// `pos_embed.embedding` (max_len, d_model) for learned positions.
  let positions: Tensor?
  /// `token_type_embed.embedding` (type_vocab_size, d_model).
  let tokenTypes: Tensor?
  /// `embed_ln` when `embedding_norm`.
  let norm: Norm?

  /// Loads the embedding tensors `config` names; the token table is split over `group`.
  public init(config: TransformerConfig, source: WeightSource, group: Communicator) throws {
    self.config = config
    let d = config.dModel
    tokens = try VocabParallelEmbedding(
      source, "token_embed.embed.embedding", vocabSize: config.vocabSize, dModel: d, group: group)
    positions = config.posEmbType == .learned ? try source.full("pos_embed.embedding", [config.maxLen, d]) : nil
    tokenTypes = config.typeVocabSize > 0 ? try source.full("token_type_embed.embedding", [config.typeVocabSize, d]) : nil
    norm =
      config.embeddingNorm
      ? try Norm(source, "embed_ln", kind: config.normType, width: d, epsilon: config.normEpsilon) : nil
  }

  /// The rows of ids (B, S) that `layout` gives rank `rank` (B, S_local, D), all of them when the
  /// layout is not sharded: what a rank of the cp ring starts from, without the whole sequence's
  /// embeddings (an 8191-token SmolLM2 prompt: 19 MB on every rank). `positions` (B, S) default
  /// to start..<start+S; they index the sinusoidal or learned table (RoPE models take them in
  /// attention). `tokenTypes` (B, S) default to type 0. Every input is checked whole, naming it,
  /// so every rank refuses the same inputs.
  public func callAsFunction(
    _ ids: IntTensor, positions pos: IntTensor?, tokenTypes types: IntTensor?, start: Int,
    layout: SequenceLayout, rank: Int
  ) throws -> Tensor {
    try check(ids, positions: pos, tokenTypes: types, start: start)
    let b = ids.shape[0], rows = layout.globalRows(of: rank)
    let localPositions =
      pos.map { layout.scatter($0, rank: rank).data.map(Int.init) }
      ?? (0..<b).flatMap { _ in rows.map { start + $0 } }
    return try embed(
      layout.scatter(ids, rank: rank), positions: localPositions, tokenTypes: types.map { layout.scatter($0, rank: rank) })
  }

  /// The checks of every input, on the whole (B, S) tensors.
  func check(_ ids: IntTensor, positions pos: IntTensor?, tokenTypes types: IntTensor?, start: Int) throws {
    guard ids.shape.count == 2, ids.shape[0] > 0, ids.shape[1] > 0 else {
      throw AttnaxError.input(name: "input_ids", message: "shape \(ids.shape) must be (batch, seq)")
    }
    if let bad = ids.data.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
      throw AttnaxError.input(name: "input_ids", message: "token \(bad) is outside the vocabulary [0, \(config.vocabSize))")
    }
    let b = ids.shape[0], s = ids.shape[1]
    if config.posEmbType == .sinusoidal || config.posEmbType == .learned {
      try RoPE.check(
        pos, name: "position_ids", batch: b, seq: s, tableSize: config.maxLen, start: start,
        table: "position table", field: "max_len")
    }
    if tokenTypes != nil, let types {
      guard types.shape == [b, s] else {
        throw AttnaxError.input(name: "token_type_ids", message: "shape \(types.shape) must be (batch \(b), seq \(s))")
      }
      if let bad = types.data.first(where: { $0 < 0 || Int($0) >= config.typeVocabSize }) {
        throw AttnaxError.input(
          name: "token_type_ids", message: "type \(bad) is outside [0, \(config.typeVocabSize)) (type_vocab_size)")
      }
    }
  }

  /// Checked ids (B, n) at `positions` (B·n, used by absolute position embeddings) -> (B, n, D).
  func embed(_ ids: IntTensor, positions p: [Int], tokenTypes types: IntTensor?) throws -> Tensor {
    let b = ids.shape[0], s = ids.shape[1], d = config.dModel
    var x = try tokens(ids.data)
    if config.posEmbType == .sinusoidal || config.posEmbType == .learned {
      if let table = positions {
        add(rowsOf: table, at: p, to: &x)
      } else {
        addSinusoidal(at: p, to: &x)
      }
    }
    if let tokenTypes {
      add(rowsOf: tokenTypes, at: types?.data.map(Int.init) ?? [Int](repeating: 0, count: b * s), to: &x)
    }
    let out = Tensor(shape: [b, s, d], data: x)
    return norm.map { $0(out) } ?? out
  }

  /// x[r] += table[index[r]] for every row r.
  func add(rowsOf table: Tensor, at index: [Int], to x: inout [Float]) {
    let d = config.dModel
    table.data.withUnsafeBufferPointer { tp in
      x.withUnsafeMutableBufferPointer { xp in
        for (r, i) in index.enumerated() {
          let src = tp.baseAddress! + i * d, dst = xp.baseAddress! + r * d
          for j in 0..<d { dst[j] += src[j] }
        }
      }
    }
  }

  /// attnax's sinusoidal table: PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(...).
  func addSinusoidal(at index: [Int], to x: inout [Float]) {
    let d = config.dModel
    let rates = (0..<d).map { 1 / powf(10000, Float(2 * ($0 / 2)) / Float(d)) }
    for (r, p) in index.enumerated() {
      for j in 0..<d {
        let a = Float(p) * rates[j]
        x[r * d + j] += j % 2 == 0 ? sinf(a) : cosf(a)
      }
    }
  }
}
