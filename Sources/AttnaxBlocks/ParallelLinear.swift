import AttnaxDist

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
    var y = matmul(x, weight)
    addBiasActivation(&y.data, bias, activation)
    return y
  }

  /// x: (..., in) -> x @ W: (..., outLocal), the bias left for a fused pass by the caller.
  public func product(_ x: Tensor) -> Tensor {
    matmul(x, weight)
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
    var y = matmul(x, weight)
    try group.allreduceSum(&y.data)
    if let residual {
      addBiasResidual(&y.data, bias, residual.data)
    } else {
      addBiasRows(&y.data, bias)
    }
    return y
  }
}
