import AttnaxFormats
import CKernels

/// LayerNorm (Flax semantics: fast variance E[x²] − E[x]² clipped at 0, eps 1e-6) or RMSNorm.
public struct Norm: Sendable {
  /// LayerNorm or RMSNorm.
  public let kind: NormType
  /// The learned scale (width).
  public let scale: [Float]
  /// LayerNorm's learned bias (width); nil for RMSNorm.
  public let bias: [Float]?
  /// Added to the variance (or mean square) before the square root.
  public let epsilon: Float

  /// A norm of these parameters.
  public init(kind: NormType, scale: [Float], bias: [Float]?, epsilon: Float = 1e-6) {
    self.kind = kind; self.scale = scale; self.bias = bias; self.epsilon = epsilon
  }

  /// Loads `prefix.scale` (and `prefix.bias` for LayerNorm) of width `width`.
  public init(_ source: WeightSource, _ prefix: String, kind: NormType, width: Int, epsilon: Double) throws {
    self.init(
      kind: kind, scale: try source.full("\(prefix).scale", [width]).data,
      bias: kind == .layer ? try source.full("\(prefix).bias", [width]).data : nil, epsilon: Float(epsilon))
  }

  /// x: (..., D) -> (..., D), normalised over the last axis (one pass of the C kernel).
  public func callAsFunction(_ x: Tensor) -> Tensor {
    let d = scale.count
    precondition(x.shape.last == d)
    let n = x.count / d
    let out = [Float](unsafeUninitializedCapacity: x.count) { op, count in
      x.data.withUnsafeBufferPointer { xp in
        scale.withUnsafeBufferPointer { sp in
          let bias = kind == .layer ? self.bias : nil
          func run(_ bp: UnsafePointer<Float>?) {
            guard let xb = xp.baseAddress, let ob = op.baseAddress else { return }
            RowParallel.forEach(rows: n, work: Double(x.count) * 64) { rows in
              ax_norm_rows(
                xb + rows.lowerBound * d, ob + rows.lowerBound * d, rows.count, d, sp.baseAddress!, bp,
                epsilon, kind == .rms ? 1 : 0)
            }
          }
          if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
        }
      }
      count = x.count
    }
    return Tensor(shape: x.shape, data: out)
  }
}
