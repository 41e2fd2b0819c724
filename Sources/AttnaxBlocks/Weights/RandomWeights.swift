import AttnaxFormats
import Foundation

/// Weights generated from a fixed seed (SplitMix64 → uniform in ±1/√fan_in, embeddings ±1;
/// norm scales near 1, biases small), identical on every rank, so demos and benchmarks need no files.
public struct RandomWeights: WeightSource {
  public let seed: UInt64
  public init(seed: UInt64) { self.seed = seed }

  public func load(_ name: String, shape: [Int], rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor {
    var h: UInt64 = seed ^ 0x9E37_79B9_7F4A_7C15
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
        var z = h &+ UInt64(i * cols + j) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let u = Float(z >> 40) / Float(1 << 24) * 2 - 1
        out.append(isScale ? 1 + amp * u : amp * u)
      }
    }
    return Tensor(shape: shape.count == 2 ? [r.count, c.count] : [c.count], data: out)
  }
}
