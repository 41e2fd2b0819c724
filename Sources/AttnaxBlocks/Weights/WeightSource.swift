import AttnaxFormats

/// Where layers get their weights: a name, the full shape, and the slice this rank needs.
public protocol WeightSource {
  /// The (rows, columns) slice of the tensor `name` whose full shape must be `shape`.
  /// 1-D tensors are sliced by `columns`. Every value is finite: a source that reads files
  /// refuses a NaN or an infinity in the slice (a NaN weight would otherwise spread silently,
  /// or surface later as a misleading error about an input or a token).
  func load(_ name: String, shape: [Int], rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor
  /// Rows `outRows` and columns `inColumns` (nil: all) of the weight matrix (out, in) of the
  /// linear layer `prefix`: each output feature's weights contiguous, as the layers keep them.
  ///
  /// attnax's own files store the kernel (in, out) as `prefix.kernel`; the default reads that
  /// and transposes. Checkpoints that store (out, in) (GGUF, Hugging Face) serve it as it is.
  func matrix(
    _ prefix: String, outFeatures: Int, inFeatures: Int, outRows: Range<Int>?, inColumns: Range<Int>?
  ) throws
    -> Tensor
  /// Called once a model has copied out everything it needs (e.g. to drop mapped file pages).
  func finishedLoading()
  /// How matrices are kept in memory (``WeightStorage``); float32 unless the source says otherwise.
  var storage: WeightStorage { get }
  /// Rows `outRows` and columns `inColumns` of the matrix `name` (out, in): a linear layer's
  /// `prefix.kernel` (served as ``matrix(_:outFeatures:inFeatures:outRows:inColumns:)`` gives it)
  /// or an embedding table (vocab, d), kept as ``storage`` says.
  func weights(
    _ name: String, outFeatures: Int, inFeatures: Int, outRows: Range<Int>?, inColumns: Range<Int>?
  ) throws -> WeightMatrix
  /// The elements per block of the input dimension of matrix `name` as it will be kept: a slice
  /// of the input features (a row-parallel layer's) that starts and ends on multiples of it
  /// keeps the blocks as they are. 1 for float32.
  func inputBlock(_ name: String, inFeatures: Int) -> Int
  /// Bytes per element the tensor `name` will take once loaded: 4 for float32, a block type's
  /// bytes per element for matrices kept in blocks. What `--pp-layers memory` balances.
  func bytesPerElement(_ name: String) -> Double
}

extension WeightSource {
  /// Nothing to release by default.
  public func finishedLoading() {}
  /// float32, or Q8_0's 34 bytes per 32 elements for the matrices of a `.q8_0` source.
  public func bytesPerElement(_ name: String) -> Double { Self.convertedBytesPerElement(name, storage: storage) }

  /// Bytes per element of `name` read as float32 and kept as `storage` says: Q8_0's 34 per 32
  /// for matrices (kernels and embedding tables) under `.q8_0`, else 4.
  static func convertedBytesPerElement(_ name: String, storage: WeightStorage) -> Double {
    let matrix = name.hasSuffix(".kernel") || name.hasSuffix("embedding")
    return storage == .q8_0 && matrix ? Double(GGMLType.q8_0.blockBytes) / Double(GGMLType.q8_0.blockElements) : 4
  }
  /// float32 by default.
  public var storage: WeightStorage { .float32 }
  /// The float32 slice (``floatWeights(_:outFeatures:inFeatures:outRows:inColumns:)``).
  public func weights(
    _ name: String, outFeatures: Int, inFeatures: Int, outRows: Range<Int>?, inColumns: Range<Int>?
  ) throws -> WeightMatrix {
    try floatWeights(name, outFeatures: outFeatures, inFeatures: inFeatures, outRows: outRows, inColumns: inColumns)
  }
  /// The float32 slice of matrix `name`, quantized to Q8_0 when ``storage`` is `.q8_0` and the row
  /// length allows (a multiple of 32).
  func floatWeights(
    _ name: String, outFeatures: Int, inFeatures: Int, outRows: Range<Int>?, inColumns: Range<Int>?
  ) throws -> WeightMatrix {
    let t =
      name.hasSuffix(".kernel")
      ? try matrix(
        String(name.dropLast(".kernel".count)), outFeatures: outFeatures, inFeatures: inFeatures, outRows: outRows,
        inColumns: inColumns)
      : try load(name, shape: [outFeatures, inFeatures], rows: outRows, columns: inColumns)
    return storage == .q8_0 && t.rank == 2 && t.shape[1] % 32 == 0 && t.shape[1] > 0 ? .blocks(BlockMatrix(q8_0: t)) : .float(t)
  }
  /// 32 for Q8_0 storage of a row length that is a multiple of 32, else 1.
  public func inputBlock(_ name: String, inFeatures: Int) -> Int {
    storage == .q8_0 && inFeatures % 32 == 0 ? 32 : 1
  }
  /// `prefix.kernel` (in, out) as attnax stores it, sliced and transposed to (out, in).
  public func matrix(
    _ prefix: String, outFeatures: Int, inFeatures: Int, outRows: Range<Int>?, inColumns: Range<Int>?
  )
    throws -> Tensor
  {
    try load("\(prefix).kernel", shape: [inFeatures, outFeatures], rows: inColumns, columns: outRows).transposed2D()
  }
  func full(_ name: String, _ shape: [Int]) throws -> Tensor {
    try load(name, shape: shape, rows: nil, columns: nil)
  }
}

extension SafetensorsFile: WeightSource {
  /// The tensor `name`, checked against `shape`, whole or the rows / columns given; each value is
  /// checked finite as it is copied out of the file (one pass), and the first NaN or infinity is
  /// refused naming the tensor, its flat index and the file.
  public func load(_ name: String, shape: [Int], rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor {
    if rows == nil && columns == nil { return try float(name, shape: shape, requireFinite: true) }
    return try floatSlice(name, expectedShape: shape, rows: rows, columns: columns, requireFinite: true)
  }
  /// Drops the mapped pages the layers copied out.
  public func finishedLoading() { dropResidentPages() }
}

/// Another source's weights kept as `storage` says (`--weights q8_0` on an attnax directory or
/// the built-in model): every read is the other source's; matrices are quantized at load.
public struct StoredWeights: WeightSource {
  /// The source read.
  public let base: any WeightSource
  /// How its matrices are kept.
  public let storage: WeightStorage
  /// `base`'s weights kept as `storage` says.
  public init(_ base: any WeightSource, storage: WeightStorage) { self.base = base; self.storage = storage }
  /// `base`'s slice.
  public func load(_ name: String, shape: [Int], rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor {
    try base.load(name, shape: shape, rows: rows, columns: columns)
  }
  /// `base`'s (out, in) slice.
  public func matrix(
    _ prefix: String, outFeatures: Int, inFeatures: Int, outRows: Range<Int>?, inColumns: Range<Int>?
  ) throws -> Tensor {
    try base.matrix(prefix, outFeatures: outFeatures, inFeatures: inFeatures, outRows: outRows, inColumns: inColumns)
  }
  /// `base`'s.
  public func finishedLoading() { base.finishedLoading() }
}
