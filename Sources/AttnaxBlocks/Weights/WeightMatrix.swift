import AttnaxFormats
import CKernels

/// How a model keeps its linear weights and embedding tables in memory (`--weights`).
public enum WeightStorage: String, Sendable, CaseIterable {
  /// float32, whatever the file stores (quantized blocks dequantized at load): the exact
  /// comparison with float32 references.
  case float32 = "f32"
  /// The file's own types: a GGUF's quantized blocks stay blocks (``BlockMatrix``); float files
  /// load as float32.
  case native
  /// Q8_0 blocks quantized at load from the float values (any checkpoint), for the memory saving.
  case q8_0
}

/// A weight matrix (out, in) kept in a GGUF block type, one output feature per row: each row is
/// `columns / blockElements` whole blocks, as the file stores them, 64-byte aligned.
///
/// A rank holds only its slice: any output rows, and input columns on block boundaries.
public final class BlockMatrix: @unchecked Sendable {
  /// The block type.
  public let type: GGMLType
  /// Output features (rows).
  public let rows: Int
  /// Input features (elements per row), a multiple of the type's block.
  public let columns: Int
  /// Bytes per row.
  public let rowBytes: Int
  /// rows × rowBytes bytes, immutable once loaded.
  let base: UnsafeMutableRawPointer

  /// An uninitialised matrix of `rows` rows of `columns` elements of `type`, filled by `fill`
  /// (given the base address and the row stride in bytes).
  init(type: GGMLType, rows: Int, columns: Int, fill: (UnsafeMutableRawPointer, Int) throws -> Void) rethrows {
    precondition(Self.supports(type) && columns % type.blockElements == 0, "BlockMatrix: \(type.name) × \(columns)")
    self.type = type; self.rows = rows; self.columns = columns
    rowBytes = columns / type.blockElements * type.blockBytes
    base = UnsafeMutableRawPointer.allocate(byteCount: max(rows * rowBytes, 1), alignment: 64)
    do { try fill(base, rowBytes) } catch {
      base.deallocate()
      throw error
    }
  }

  deinit { base.deallocate() }

  /// Float rows (rows, columns) quantized to Q8_0 (k a multiple of 32), as ggml's reference does.
  public convenience init(q8_0 weights: Tensor) {
    let rows = weights.shape[0], columns = weights.shape[1]
    self.init(type: .q8_0, rows: rows, columns: columns) { dst, stride in
      weights.data.withUnsafeBufferPointer { src in
        guard let x = src.baseAddress, rows > 0 else { return }
        ax_q_quantize_q8_0(x, rows, columns, columns, dst, stride)
      }
    }
  }

  /// Whether the product kernels take `type` as a weight type.
  public static func supports(_ type: GGMLType) -> Bool { ax_q_block_elems(Int32(type.rawValue)) > 0 }

  /// The C kernels' type id.
  var typeID: Int32 { Int32(type.rawValue) }
  /// The activation type the products round inputs to (Q8_0, Q8_1, Q8_K, F16, BF16 or F32).
  var activationType: Int32 { ax_q_act_type(typeID) }

  /// Rows `range` dequantized into `out` (range.count × columns floats, row stride `stride`).
  func dequantize(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>, stride: Int) {
    guard !range.isEmpty, columns > 0 else { return }
    ax_q_dequantize_rows(typeID, base + range.lowerBound * rowBytes, rowBytes, range.count, columns, out, stride)
  }

  /// The whole matrix in float32 (rows, columns): for tests and checks.
  public func dequantized() -> Tensor {
    let out = [Float](unsafeUninitializedCapacity: rows * columns) { buffer, count in
      if let dst = buffer.baseAddress { dequantize(0..<rows, into: dst, stride: columns) }
      count = rows * columns
    }
    return Tensor(shape: [rows, columns], data: out)
  }
}

/// A linear layer's weights (out, in), or an embedding table (vocab, d): float32 or blocks.
public enum WeightMatrix: Sendable {
  /// float32 (out, in).
  case float(Tensor)
  /// Quantized blocks as the file stores them.
  case blocks(BlockMatrix)

  /// Output features (rows).
  public var outFeatures: Int {
    switch self {
    case .float(let t): t.shape[0]
    case .blocks(let b): b.rows
    }
  }
  /// Input features (columns).
  public var inFeatures: Int {
    switch self {
    case .float(let t): t.shape[1]
    case .blocks(let b): b.columns
    }
  }
  /// ggml's name of the element type ("f32", "q4_K", ...).
  public var typeName: String {
    switch self {
    case .float: "f32"
    case .blocks(let b): b.type.name
    }
  }
  /// Bytes held in memory.
  public var residentBytes: Int {
    switch self {
    case .float(let t): t.count * MemoryLayout<Float>.size
    case .blocks(let b): b.rows * b.rowBytes
    }
  }
  /// The values in float32 (out, in).
  public func dequantized() -> Tensor {
    switch self {
    case .float(let t): t
    case .blocks(let b): b.dequantized()
    }
  }
  /// The float32 tensor when the weights are float32.
  var floatTensor: Tensor? {
    if case .float(let t) = self { return t }
    return nil
  }
}

/// What a model holds, per element type: counts of matrices and resident bytes.
public struct WeightInventory: Sendable, Equatable {
  /// Bytes per type name, for matrices and tables.
  public private(set) var bytesByType: [String: Int] = [:]
  /// Bytes of vectors (norm scales, biases) and other float tensors.
  public private(set) var otherBytes = 0

  /// An empty inventory.
  public init() {}
  /// Adds a matrix.
  public mutating func add(_ m: WeightMatrix) { bytesByType[m.typeName, default: 0] += m.residentBytes }
  /// Adds float values.
  public mutating func add(floats count: Int) { otherBytes += count * MemoryLayout<Float>.size }
  /// Everything.
  public var totalBytes: Int { bytesByType.values.reduce(otherBytes, +) }
  /// "q4_1 61.2 MB, q8_0 30.1 MB, f32 0.1 MB", largest first.
  public var summary: String {
    var parts = bytesByType.sorted { $0.value > $1.value }.map { ($0.key, $0.value) }
    if otherBytes > 0 { parts.append(("f32 vectors", otherBytes)) }
    return parts.map { "\($0.0) \(Self.megabytes($0.1))" }.joined(separator: ", ")
  }
  /// "61.2 MB": decimal megabytes, one decimal below 100.
  public static func megabytes(_ bytes: Int) -> String {
    let mb = Double(bytes) / 1e6
    return mb >= 100 ? "\(Int(mb.rounded())) MB" : "\((mb * 10).rounded() / 10) MB"
  }
}
