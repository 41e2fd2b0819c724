import AttnaxDist
import AttnaxFormats
import CKernels

/// A Flax `Linear` whose input features are split across the tensor-parallel group.
///
/// y = allreduce_tp(x_local @ W[rows, :]) + b: one allreduce, bias added after it.
public struct RowParallelLinear: @unchecked Sendable {
  public let weight: Tensor  // (inLocal, out)
  public let bias: [Float]   // (out), full
  public let group: Communicator

  public init(weight: Tensor, bias: [Float], group: Communicator) {
    self.weight = weight; self.bias = bias; self.group = group
  }

  /// Loads rows `rows` of `prefix.kernel` (in, out) and the whole `prefix.bias`.
  public init(_ source: WeightSource, _ prefix: String, inFeatures: Int, outFeatures: Int, rows: Range<Int>, group: Communicator) throws {
    weight = try source.load("\(prefix).kernel", shape: [inFeatures, outFeatures], rows: rows, columns: nil)
    bias = try source.full("\(prefix).bias", [outFeatures]).data
    self.group = group
  }

  /// x_local: (..., inLocal) -> (..., out), summed over the group; with `residual` (..., out)
  /// the result is (allreduce(x W) + b) + residual, the bias and residual added in one pass.
  public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) throws -> Tensor {
    let cols = bias.count
    if let residual { precondition(residual.count == x.shape.dropLast().reduce(1, *) * cols, "residual \(residual.shape) vs \(x.shape)") }
    // Adds the bias (and residual) to rows `rows` of y.
    func finish(_ y: UnsafeMutablePointer<Float>, _ rows: Range<Int>) {
      guard cols > 0 else { return }
      let off = rows.lowerBound * cols
      bias.withUnsafeBufferPointer { bp in
        if let residual {
          residual.data.withUnsafeBufferPointer { ax_bias_residual(y + off, bp.baseAddress!, $0.baseAddress! + off, rows.count, cols) }
        } else {
          ax_bias_act(y + off, bp.baseAddress!, rows.count, cols, Int32(AX_ACT_NONE))
        }
      }
    }
    guard group.size > 1 else { return matmul(x, weight, epilogue: finish) }
    var y = matmul(x, weight)
    try group.allreduceSum(&y.data)
    let total = y.count, n = total / max(1, cols)
    y.data.withUnsafeMutableBufferPointer { yp in
      RowParallel.forEach(rows: n, work: Double(total) * 64) { finish(yp.baseAddress!, $0) }
    }
    return y
  }
}
