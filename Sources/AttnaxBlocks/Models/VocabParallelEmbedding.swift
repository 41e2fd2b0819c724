import AttnaxDist
import AttnaxFormats
import CKernels

/// The token embedding table split by vocabulary rows over the tensor-parallel group, as
/// Megatron's `VocabParallelEmbedding`: rank r of tp holds rows `evenSplit(vocab, tp, r)`.
///
/// A lookup writes the rows this rank owns and zeros elsewhere, then one allreduce over tp
/// completes every row (d_model floats per token cross the wire). Tied LM heads reuse the
/// same rows for this rank's slice of the logits, so no rank ever holds the whole table.
public struct VocabParallelEmbedding: Sendable {
  /// Tokens in the whole vocabulary.
  public let vocabSize: Int
  /// Width of an embedding.
  public let dModel: Int
  /// The vocabulary rows this rank holds.
  public let rows: Range<Int>
  /// (rows.count, dModel), in float32 or the file's blocks.
  let table: WeightMatrix
  /// The tensor-parallel group that shares the table.
  let group: Communicator

  /// Loads this rank's rows of `name` (vocab, d_model).
  public init(_ source: WeightSource, _ name: String, vocabSize: Int, dModel: Int, group: Communicator) throws {
    self.vocabSize = vocabSize; self.dModel = dModel; self.group = group
    rows = ShardingPlan.evenSplit(vocabSize, parts: group.size, index: group.rank)
    table = try source.weights(name, outFeatures: vocabSize, inFeatures: dModel, outRows: rows, inColumns: nil)
  }

  /// ids (N), each in [0, vocab) -> (N, dModel): the embedding of every id, on every rank.
  public func callAsFunction(_ ids: [Int32]) throws -> [Float] {
    let d = dModel
    var out = [Float](repeating: 0, count: ids.count * d)
    out.withUnsafeMutableBufferPointer { op in
      for (i, id) in ids.enumerated() where rows.contains(Int(id)) {
        let row = Int(id) - rows.lowerBound
        switch table {
        case .float(let t):
          t.data.withUnsafeBufferPointer { (op.baseAddress! + i * d).update(from: $0.baseAddress! + row * d, count: d) }
        case .blocks(let b): b.dequantize(row..<(row + 1), into: op.baseAddress! + i * d, stride: d)
        }
      }
    }
    try group.allreduceSum(&out)
    return out
  }

  /// h: (N, dModel) -> this rank's logits (N, rows.count) = h · E[rows]ᵀ (a tied LM head).
  ///
  /// A decode step (at most ``streamingRows`` rows) is ``linear(_:_:)``: the table's rows
  /// streamed over the threads. More rows always split the vocabulary rows over the BLAS threads,
  /// each thread packing its part of the table; ``linear(_:_:epilogue:)`` would split the rows of
  /// `h` instead when there are at least as many as this rank's vocabulary rows.
  public func logits(_ h: Tensor) -> Tensor {
    let n = h.count / dModel, v = rows.count, d = dModel
    guard case .float(let table) = table else { return linear(Tensor(shape: [n, d], data: h.data), self.table) }
    if n <= streamingRows { return linear(Tensor(shape: [n, d], data: h.data), [self.table])[0] }
    var out = [Float](repeating: 0, count: n * v)
    guard v > 0 else { return Tensor(shape: [n, v], data: out) }
    h.data.withUnsafeBufferPointer { hp in
      table.data.withUnsafeBufferPointer { ep in
        out.withUnsafeMutableBufferPointer { op in
          let a = hp.baseAddress!, e = ep.baseAddress!, c = op.baseAddress!
          RowParallel.forEach(rows: v, work: Double(n) * Double(v) * Double(d)) { block in
            sgemm(
              transB: true, m: n, n: block.count, k: d, a: a, lda: d, b: e + block.lowerBound * d, ldb: d,
              c: c + block.lowerBound, ldc: v)
          }
        }
      }
    }
    return Tensor(shape: [n, v], data: out)
  }
}
