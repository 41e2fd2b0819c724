import AttnaxDist
import AttnaxFormats
import CKernels

/// A Flax `Linear` whose output features are split across the tensor-parallel group.
///
/// y_local = x @ W[:, cols] (+ b[cols]); the bias is absent for models without biases
/// (`use_bias: false`).
public struct ColumnParallelLinear: Sendable {
  /// (in, outLocal).
  public let weight: Tensor
  /// (outLocal), or nil.
  public let bias: [Float]?

  /// A linear layer of these weights.
  public init(weight: Tensor, bias: [Float]?) { self.weight = weight; self.bias = bias }

  /// Loads `prefix.kernel` (in, out) and, when `bias`, `prefix.bias` (out): columns `columns`.
  public init(_ source: WeightSource, _ prefix: String, inFeatures: Int, outFeatures: Int, columns: Range<Int>, bias: Bool = true) throws {
    weight = try source.load("\(prefix).kernel", shape: [inFeatures, outFeatures], rows: nil, columns: columns)
    self.bias = bias ? try source.load("\(prefix).bias", shape: [outFeatures], rows: nil, columns: columns).data : nil
  }

  /// Output features of this rank.
  public var outFeatures: Int { weight.shape[1] }

  /// x: (..., in) -> act(x @ W + b): (..., outLocal); the bias and activation are one pass.
  public func callAsFunction(_ x: Tensor, activation code: Int32 = Int32(AX_ACT_NONE)) -> Tensor {
    let cols = outFeatures
    return bias.withPointer { bp in
      matmul(x, weight) { y, rows in
        guard cols > 0, bp != nil || code != Int32(AX_ACT_NONE) else { return }
        ax_bias_act(y + rows.lowerBound * cols, bp, rows.count, cols, code)
      }
    }
  }

  /// x: (..., in) -> x @ W: (..., outLocal), the bias left to `epilogue` (see ``matmul(_:_:epilogue:)``).
  public func product(_ x: Tensor, epilogue: ((UnsafeMutablePointer<Float>, Range<Int>) -> Void)? = nil) -> Tensor {
    matmul(x, weight, epilogue: epilogue)
  }
}

extension Optional where Wrapped == [Float] {
  /// The elements' address (nil when absent) for the duration of `body`: how optional biases
  /// reach the C kernels, which take NULL for "no bias".
  func withPointer<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
    guard let self else { return try body(nil) }
    return try self.withUnsafeBufferPointer { try body($0.baseAddress) }
  }
}
