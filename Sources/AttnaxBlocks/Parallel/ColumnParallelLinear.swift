import AttnaxFormats
import AttnaxDist
import CKernels

/// A Flax `Linear` whose output features are split across the tensor-parallel group.
///
/// y_local = x @ W[:, cols] + b[cols]; with `gatherOutput` the group's pieces are gathered.
public struct ColumnParallelLinear: Sendable {
  public let weight: Tensor  // (in, outLocal)
  public let bias: [Float]   // (outLocal)

  public init(weight: Tensor, bias: [Float]) { self.weight = weight; self.bias = bias }

  /// Loads `prefix.kernel` (in, out) and `prefix.bias` (out) columns `columns`.
  public init(_ source: WeightSource, _ prefix: String, inFeatures: Int, outFeatures: Int, columns: Range<Int>) throws {
    weight = try source.load("\(prefix).kernel", shape: [inFeatures, outFeatures], rows: nil, columns: columns)
    bias = try source.load("\(prefix).bias", shape: [outFeatures], rows: nil, columns: columns).data
  }

  /// x: (..., in) -> act(x @ W + b): (..., outLocal); the bias and activation are one pass.
  public func callAsFunction(_ x: Tensor, activation: FFActivation? = nil) -> Tensor {
    let code = activation?.kernelCode ?? Int32(AX_ACT_NONE), cols = bias.count
    return bias.withUnsafeBufferPointer { bp in
      matmul(x, weight) { y, rows in
        guard cols > 0 else { return }
        ax_bias_act(y + rows.lowerBound * cols, bp.baseAddress!, rows.count, cols, code)
      }
    }
  }

  /// x: (..., in) -> x @ W: (..., outLocal), the bias left to `epilogue` (see ``matmul(_:_:epilogue:)``).
  public func product(_ x: Tensor, epilogue: ((UnsafeMutablePointer<Float>, Range<Int>) -> Void)? = nil) -> Tensor {
    matmul(x, weight, epilogue: epilogue)
  }
}
