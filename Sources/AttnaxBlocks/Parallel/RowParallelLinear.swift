import AttnaxDist
import AttnaxFormats
import CKernels

/// A Flax `Linear` whose input features are split across the tensor-parallel group.
///
/// y = allreduce_tp(x_local @ K[rows, :]) (+ b) for the checkpoint's kernel K (in, out): one
/// allreduce, the bias added after it.
public struct RowParallelLinear: Sendable {
  /// (out, inLocal): this rank's rows of the kernel, one output feature per row (see
  /// ``ColumnParallelLinear/weight``).
  public let weight: WeightMatrix
  /// (out), whole on every rank, or nil.
  public let bias: [Float]?
  /// The tensor-parallel group summing the partial products.
  public let group: Communicator

  /// A linear layer of the kernel `kernel` (inLocal, out), as a checkpoint stores it, over `group`.
  public init(kernel: Tensor, bias: [Float]?, group: Communicator) {
    self.weight = .float(kernel.transposed2D()); self.bias = bias; self.group = group
  }

  /// Loads input features `rows` of the weights of `prefix` (``WeightSource/matrix(_:outFeatures:inFeatures:outRows:inColumns:)``)
  /// and, when `bias`, the whole `prefix.bias`.
  public init(
    _ source: WeightSource, _ prefix: String, inFeatures: Int, outFeatures: Int, rows: Range<Int>,
    group: Communicator, bias: Bool = true
  ) throws {
    weight = try source.weights(
      "\(prefix).kernel", outFeatures: outFeatures, inFeatures: inFeatures, outRows: nil, inColumns: rows)
    self.bias = bias ? try source.full("\(prefix).bias", [outFeatures]).data : nil
    self.group = group
  }

  /// x_local: (..., inLocal) -> (..., out), summed over the group; with `residual` (..., out)
  /// the result is (allreduce(x W) + b) + residual, the bias and residual added in one pass.
  public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) throws -> Tensor {
    let cols = weight.outFeatures
    if let residual {
      precondition(residual.count == x.shape.dropLast().reduce(1, *) * cols, "residual \(residual.shape) vs \(x.shape)")
    }
    // Adds the bias (and residual) to rows `rows` of y.
    func finish(_ y: UnsafeMutablePointer<Float>, _ rows: Range<Int>) {
      guard cols > 0, bias != nil || residual != nil else { return }
      let off = rows.lowerBound * cols
      bias.withPointer { bp in
        if let residual {
          residual.data.withUnsafeBufferPointer { ax_bias_residual(y + off, bp, $0.baseAddress! + off, rows.count, cols) }
        } else {
          ax_bias_act(y + off, bp, rows.count, cols, Int32(AX_ACT_NONE))
        }
      }
    }
    guard group.size > 1 else { return linear(x, weight, epilogue: finish) }
    var y = linear(x, weight)
    try group.allreduceSum(&y.data)
    let total = y.count, n = total / max(1, cols)
    y.data.withUnsafeMutableBufferPointer { yp in
      RowParallel.forEach(rows: n, work: Double(total) * 64) { finish(yp.baseAddress!, $0) }
    }
    return y
  }
}
