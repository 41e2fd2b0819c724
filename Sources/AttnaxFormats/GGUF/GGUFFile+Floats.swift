extension GGUFFile {
  // MARK: Tensor data as float32

  /// Dequantized rows of tensor `name` viewed as (``GGUFTensorInfo/rowCount``,
  /// ``GGUFTensorInfo/rowLength``): `rows.count × rowLength` floats, row after row.
  ///
  /// Only the blocks of the rows asked for are read.
  /// - Throws: ``AttnaxError/tensor(name:message:)`` if the tensor is missing, its type cannot be
  ///   dequantized (``GGMLType/canDequantize``), or `rows` is out of range.
  public func floatRows(_ name: String, rows: Range<Int>) throws -> [Float] {
    let (info, dequantize) = try dequantizable(name)
    try check(name, rows, within: info.rowCount, what: "rows", shape: info.shape)
    let count = rows.count * info.rowLength
    let src = try data(info) + rows.lowerBound * info.rowBytes
    return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
      if let dst = buffer.baseAddress, count > 0 {
        dequantize(src, rows.count * info.rowLength / info.type.blockElements, dst)
      }
      initialized = count
    }
  }

  /// A dequantized part of tensor `name`.
  ///
  /// - 1-D tensor (shape `[n]`): `columns` of it (`rows` must be nil); shape `[columns.count]`.
  /// - 2-D tensor (shape `[rowCount, rowLength]`): `rows` × `columns`; shape `[rows.count,
  ///   columns.count]`. Tensor-parallel loading takes a column range of a column-parallel weight
  ///   or a row range of a row-parallel one.
  /// - A tensor of other rank: the whole tensor (both nil), shaped ``GGUFTensorInfo/shape``.
  ///
  /// `nil` keeps the whole axis. Only the blocks that cover the slice are dequantized: a column
  /// range that starts or ends inside a block decodes that block and keeps its part.
  /// - Throws: ``AttnaxError/tensor(name:message:)`` if the tensor is missing, cannot be
  ///   dequantized, or the ranges do not fit its shape.
  ///
  /// With `requireFinite` (model weights) the slice is checked once it is dequantized, and the
  /// first NaN or infinity is refused naming its flat index in the whole tensor.
  public func floatSlice(
    _ name: String, rows: Range<Int>? = nil, columns: Range<Int>? = nil, requireFinite: Bool = false
  ) throws -> Tensor {
    let (info, dequantize) = try dequantizable(name)
    let src = try data(info)
    let shape = info.shape
    guard (1...2).contains(info.dims.count) || (rows == nil && columns == nil) else {
      throw AttnaxError.tensor(
        name: Escaping.shown(name),
        message: "slicing needs a 1-D or 2-D tensor, got shape \(shape) in file '\(path)'; read it whole")
    }
    if info.dims.count == 1, let rows {
      throw AttnaxError.tensor(
        name: Escaping.shown(name), message: "rows \(rows) requested from a 1-D tensor of shape \(shape) in file '\(path)'")
    }
    let width = info.rowLength
    let rowRange = rows ?? 0..<info.rowCount
    let columnRange = columns ?? 0..<width
    try check(name, rowRange, within: info.rowCount, what: "rows", shape: shape)
    try check(name, columnRange, within: width, what: "columns", shape: shape)
    let outShape: [Int]
    switch info.dims.count {
    case 1: outShape = [columnRange.count]
    case 2: outShape = [rowRange.count, columnRange.count]
    default: outShape = shape
    }
    let count = rowRange.count * columnRange.count
    let perBlock = info.type.blockElements
    let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
      defer { initialized = count }
      guard let dst = buffer.baseAddress, count > 0 else { return }
      if columnRange == 0..<width {
        dequantize(src + rowRange.lowerBound * info.rowBytes, count / perBlock, dst)
        return
      }
      // The blocks covering the columns, decoded into scratch row by row; their part copied out.
      let firstBlock = columnRange.lowerBound / perBlock
      let endBlock = (columnRange.upperBound + perBlock - 1) / perBlock
      let skip = columnRange.lowerBound - firstBlock * perBlock
      let scratch = UnsafeMutablePointer<Float>.allocate(capacity: (endBlock - firstBlock) * perBlock)
      defer { scratch.deallocate() }
      for (i, r) in rowRange.enumerated() {
        dequantize(src + r * info.rowBytes + firstBlock * info.type.blockBytes, endBlock - firstBlock, scratch)
        (dst + i * columnRange.count).update(from: scratch + skip, count: columnRange.count)
      }
    }
    if requireFinite, count > 0, let i = values.withUnsafeBufferPointer({ Tensor.firstNonFinite($0.baseAddress!, count) }) {
      let flat = (rowRange.lowerBound + i / columnRange.count) * width + columnRange.lowerBound + i % columnRange.count
      throw AttnaxError.tensor(
        name: Escaping.shown(name), message: "element \(flat) is \(values[i]) in file '\(path)'; weights must be finite")
    }
    return Tensor(shape: outShape, data: values)
  }

  // MARK: Helpers

  /// The tensor `name` and its type's dequantizer.
  private func dequantizable(_ name: String) throws -> (GGUFTensorInfo, GGMLDequantize.Function) {
    guard let info = tensors[name] else {
      throw AttnaxError.tensor(name: Escaping.shown(name), message: "not found in file '\(path)'")
    }
    guard let function = GGMLDequantize.function(for: info.type) else {
      throw AttnaxError.tensor(
        name: Escaping.shown(name),
        message:
          "has ggml type \(info.type.name) in file '\(path)', which cannot be dequantized "
          + "(supported: \(GGMLDequantize.supportedNames.joined(separator: ", ")))")
    }
    return (info, function)
  }

  /// The first byte of `info`'s data.
  private func data(_ info: GGUFTensorInfo) throws -> UnsafeRawPointer {
    guard let base else {
      throw AttnaxError.tensor(name: Escaping.shown(info.name), message: "has no data in file '\(path)'")
    }
    return base + info.offset
  }

  private func check(_ name: String, _ range: Range<Int>, within extent: Int, what: String, shape: [Int]) throws {
    guard range.lowerBound >= 0, range.upperBound <= extent else {
      throw AttnaxError.tensor(
        name: Escaping.shown(name), message: "\(what) \(range) are out of range for shape \(shape) in file '\(path)'")
    }
  }
}
