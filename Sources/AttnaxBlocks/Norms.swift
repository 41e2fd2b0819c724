import Foundation

/// LayerNorm (Flax semantics: fast variance E[x²] − E[x]² clipped at 0, eps 1e-6) or RMSNorm.
public struct Norm: Sendable {
  public let kind: NormType
  public let scale: [Float]
  public let bias: [Float]?
  public let epsilon: Float

  public init(kind: NormType, scale: [Float], bias: [Float]?, epsilon: Float = 1e-6) {
    self.kind = kind; self.scale = scale; self.bias = bias; self.epsilon = epsilon
  }

  /// x: (..., D) -> (..., D), normalised over the last axis.
  public func callAsFunction(_ x: Tensor) -> Tensor {
    let d = scale.count
    precondition(x.shape.last == d)
    let n = x.count / d
    var out = [Float](repeating: 0, count: x.count)
    x.data.withUnsafeBufferPointer { xp in
      out.withUnsafeMutableBufferPointer { op in
        scale.withUnsafeBufferPointer { sp in
          let s = sp.baseAddress!
          for r in 0..<n {
            let row = xp.baseAddress! + r * d, o = op.baseAddress! + r * d
            var sum: Double = 0, sumSq: Double = 0
            for j in 0..<d { let v = Double(row[j]); sum += v; sumSq += v * v }
            switch kind {
            case .rms:
              let inv = Float(1 / (sumSq / Double(d) + Double(epsilon)).squareRoot())
              for j in 0..<d { o[j] = row[j] * inv * s[j] }
            case .layer:
              let mean = sum / Double(d)
              let varc = max(0, sumSq / Double(d) - mean * mean)
              let inv = Float(1 / (varc + Double(epsilon)).squareRoot())
              let m = Float(mean)
              if let bias {
                bias.withUnsafeBufferPointer { bp in
                  for j in 0..<d { o[j] = (row[j] - m) * (inv * s[j]) + bp[j] }
                }
              } else {
                for j in 0..<d { o[j] = (row[j] - m) * (inv * s[j]) }
              }
            }
          }
        }
      }
    }
    return Tensor(shape: x.shape, data: out)
  }
}
