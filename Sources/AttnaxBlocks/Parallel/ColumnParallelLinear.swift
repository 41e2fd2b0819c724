import AttnaxDist
import AttnaxFormats
import CKernels

/// A Flax `Linear` whose output features are split across the tensor-parallel group.
///
/// y_local = x @ K[:, cols] (+ b[cols]) for the checkpoint's kernel K (in, out); the bias is
/// absent for models without biases (`use_bias: false`).
public struct ColumnParallelLinear: Sendable {
  /// (outLocal, in): this rank's columns of the kernel, one output feature per row (a decode
  /// step streams them in order; see ``linear(_:_:epilogue:)-(Tensor,WeightMatrix,_)``), in float32
  /// or in the file's blocks.
  public let weight: WeightMatrix
  /// (outLocal), or nil.
  public let bias: [Float]?

  /// A linear layer of the kernel `kernel` (in, outLocal), as a checkpoint stores it.
  public init(kernel: Tensor, bias: [Float]?) { self.weight = .float(kernel.transposed2D()); self.bias = bias }

  /// Loads output features `columns` of the weights of `prefix` (``WeightSource/matrix(_:outFeatures:inFeatures:outRows:inColumns:)``)
  /// and, when `bias`, of `prefix.bias` (out).
  public init(
    _ source: WeightSource, _ prefix: String, inFeatures: Int, outFeatures: Int, columns: Range<Int>, bias: Bool = true
  ) throws {
    weight = try source.weights(
      "\(prefix).kernel", outFeatures: outFeatures, inFeatures: inFeatures, outRows: columns, inColumns: nil)
    self.bias = bias ? try source.load("\(prefix).bias", shape: [outFeatures], rows: nil, columns: columns).data : nil
  }

  /// Output features of this rank.
  public var outFeatures: Int { weight.outFeatures }

  /// x: (..., in) -> act(x @ K + b): (..., outLocal); the bias and activation are one pass.
  public func callAsFunction(_ x: Tensor, activation code: Int32 = Int32(AX_ACT_NONE)) -> Tensor {
    let cols = outFeatures
    return bias.withPointer { bp in
      linear(x, weight) { y, rows in
        guard cols > 0, bp != nil || code != Int32(AX_ACT_NONE) else { return }
        ax_bias_act(y + rows.lowerBound * cols, bp, rows.count, cols, code)
      }
    }
  }

  /// x: (..., in) -> x @ K: (..., outLocal), the bias left to `epilogue` (see ``linear(_:_:epilogue:)``).
  public func product(_ x: Tensor, epilogue: ((UnsafeMutablePointer<Float>, Range<Int>) -> Void)? = nil) -> Tensor {
    linear(x, weight, epilogue: epilogue)
  }

  /// x: (..., in) -> [x @ K_i + b_i] for several layers of the same input (Q, K and V): with a
  /// few rows one fork for all of them (see ``linear(_:_:)``).
  ///
  /// Blocks (``BlockMatrix``) take this path at every row count, so the input rows are rounded
  /// once for all of them.
  public static func apply(_ layers: [ColumnParallelLinear], to x: Tensor) -> [Tensor] {
    let blocks = layers.contains { if case .blocks = $0.weight { true } else { false } }
    guard blocks || x.shape.dropLast().reduce(1, *) <= streamingRows else { return layers.map { $0(x) } }
    var ys = linear(x, layers.map(\.weight))
    for (i, layer) in layers.enumerated() {
      guard let bias = layer.bias, layer.outFeatures > 0 else { continue }
      let rows = ys[i].count / layer.outFeatures
      ys[i].data.withUnsafeMutableBufferPointer {
        ax_bias_act($0.baseAddress!, bias, rows, layer.outFeatures, Int32(AX_ACT_NONE))
      }
    }
    return ys
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
