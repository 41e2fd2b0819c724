import AttnaxFormats
import Foundation

/// Weights generated from a fixed seed (SplitMix64 → uniform in ±1/√fan_in, embeddings ±1;
/// norm scales near 1, biases small), identical on every rank, so demos and benchmarks need no files.
public struct RandomWeights: WeightSource {
  /// The seed every tensor's values derive from (with the tensor's name).
  public let seed: UInt64
  /// Weights of `seed`.
  public init(seed: UInt64) { self.seed = seed }

  /// The (rows, columns) slice of `name` with full shape `shape`: element (i, j) is
  /// ``SplitMix64/hash(_:)`` of the name's hash plus its flat index, so any slice of any rank
  /// holds the same values as the whole tensor.
  public func load(_ name: String, shape: [Int], rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor {
    var h: UInt64 = seed ^ SplitMix64.increment
    for c in name.utf8 { h = (h ^ UInt64(c)) &* 0x100_0000_01B3 }
    let isScale = name.hasSuffix(".scale")
    let fanIn = shape.count == 2 ? shape[0] : 1
    let isEmbedding = name.hasSuffix(".embedding")
    let amp: Float = isScale ? 0.1 : isEmbedding ? 1 : (shape.count == 2 ? 1 / Float(fanIn).squareRoot() : 0.02)
    let r = rows ?? 0..<(shape.count == 2 ? shape[0] : 1)
    let cols = shape.last ?? 1
    let c = columns ?? 0..<cols
    var out = [Float](); out.reserveCapacity(r.count * c.count)
    for i in r {
      for j in c {
        let u = SplitMix64.unit(SplitMix64.hash(h &+ UInt64(i * cols + j) &* SplitMix64.increment)) * 2 - 1
        out.append(isScale ? 1 + amp * u : amp * u)
      }
    }
    return Tensor(shape: shape.count == 2 ? [r.count, c.count] : [c.count], data: out)
  }
}
