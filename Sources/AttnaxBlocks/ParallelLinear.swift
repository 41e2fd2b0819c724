import AttnaxDist
import CKernels

/// Where layers get their weights: a name, the full shape, and the slice this rank needs.
public protocol WeightSource {
  /// The (rows, columns) slice of the tensor `name` whose full shape must be `shape`.
  /// 1-D tensors are sliced by `columns`.
  func load(_ name: String, shape: [Int], rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor
  /// Called once a model has copied out everything it needs (e.g. to drop mapped file pages).
  func finishedLoading()
}

extension WeightSource {
  public func finishedLoading() {}
  func full(_ name: String, _ shape: [Int]) throws -> Tensor {
    try load(name, shape: shape, rows: nil, columns: nil)
  }
}

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
