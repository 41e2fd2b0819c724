/// A dense row-major Float32 tensor: a shape and its elements.
///
/// Value semantics (copy on write through `Array`). Kernels take raw pointers from
/// `withUnsafeBufferPointer`; no per-element work is done through this type.
public struct Tensor: Sendable, Equatable {
  /// Extent of each axis, outermost first.
  public var shape: [Int]
  /// Elements in row-major order; `data.count == shape.product`.
  public var data: [Float]

  /// Wraps `data` with `shape`; the counts must agree.
  public init(shape: [Int], data: [Float]) {
    precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not hold \(data.count) elements")
    self.shape = shape
    self.data = data
  }

  /// A tensor of zeros.
  public init(zeros shape: [Int]) {
    self.shape = shape
    self.data = [Float](repeating: 0, count: shape.reduce(1, *))
  }

  /// Number of elements.
  public var count: Int { data.count }
  /// Number of axes.
  public var rank: Int { shape.count }

  /// The same elements with another shape of equal element count.
  public func reshaped(_ newShape: [Int]) -> Tensor {
    Tensor(shape: newShape, data: data)
  }

  /// Rows `range` of the tensor viewed as (shape[0], rest).
  public func rows(_ range: Range<Int>) -> Tensor {
    let inner = shape.dropFirst().reduce(1, *)
    return Tensor(
      shape: [range.count] + shape.dropFirst(), data: Array(data[(range.lowerBound * inner)..<(range.upperBound * inner)]))
  }
}

/// Integer tensor (positions, ids) with a shape.
public struct IntTensor: Sendable, Equatable {
  /// Extent of each axis, outermost first.
  public var shape: [Int]
  /// Elements in row-major order.
  public var data: [Int32]
  /// Wraps `data` with `shape`; the counts must agree.
  public init(shape: [Int], data: [Int32]) {
    precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not hold \(data.count) elements")
    self.shape = shape
    self.data = data
  }
}

/// Boolean mask tensor (1 = attend) with a shape broadcastable to (batch, heads, q, kv).
public struct MaskTensor: Sendable, Equatable {
  /// Extent of each axis, outermost first.
  public var shape: [Int]
  /// Elements in row-major order, 0 or 1.
  public var data: [UInt8]
  /// Wraps `data` with `shape`; the counts must agree.
  public init(shape: [Int], data: [UInt8]) {
    precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not hold \(data.count) elements")
    self.shape = shape
    self.data = data
  }
}

extension Tensor {
  /// The index of the first NaN or ±infinity among the `n` floats at `p`, or nil. A branch-free
  /// pass first, which the compiler vectorises: a value is not finite when its exponent bits are
  /// all ones, and only then does adding 1 to them carry into bit 31. The scan for the index
  /// runs only when that pass found one.
  public static func firstNonFinite(_ p: UnsafePointer<Float>, _ n: Int) -> Int? {
    let carried = p.withMemoryRebound(to: UInt32.self, capacity: n) { bits -> UInt32 in
      var any: UInt32 = 0
      for i in 0..<n { any |= (bits[i] & 0x7f80_0000) &+ 0x0080_0000 }
      return any
    }
    guard carried & 0x8000_0000 != 0 else { return nil }
    return (0..<n).first { !p[$0].isFinite }
  }
}
