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
}

extension WeightSource {
  /// Nothing to release by default.
  public func finishedLoading() {}
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
