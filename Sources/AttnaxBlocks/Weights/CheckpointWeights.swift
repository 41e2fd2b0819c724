import AttnaxFormats

/// A checkpoint file's tensors by the checkpoint's own names, read as float32 slices of the
/// layout it stores: (rows, columns) for matrices (a linear layer's (out, in)), elements for
/// vectors. GGUF files dequantize the blocks a slice covers; safetensors convert F16/BF16.
public protocol TensorStore: Sendable {
  /// The file (for messages).
  var path: String { get }
  /// Every tensor's shape, rows first.
  var tensorShapes: [String: [Int]] { get }
  /// Rows and columns of a 2-D tensor, or elements (`columns`) of a 1-D one; nil keeps all.
  /// Weights must be finite: the first NaN or infinity is refused, naming its element.
  func floats(_ name: String, rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor
  /// Drops the mapped pages the layers copied out.
  func dropResidentPages()
  /// A 2-D tensor's stored bytes when they are blocks the product kernels take as they are
  /// (``BlockMatrix/supports(_:)``, not float32): type, bytes per row and the first byte. Nil
  /// otherwise (the tensor is then read as floats).
  func blockRows(_ name: String) -> (type: GGMLType, rowBytes: Int, data: UnsafeRawPointer)?
}

extension TensorStore {
  /// No blocks by default.
  public func blockRows(_ name: String) -> (type: GGMLType, rowBytes: Int, data: UnsafeRawPointer)? { nil }
}

extension GGUFFile: TensorStore {
  /// Every tensor's shape, rows first (GGUF lists the fastest dimension first).
  public var tensorShapes: [String: [Int]] { tensors.mapValues(\.shape) }
  /// See ``TensorStore/floats(_:rows:columns:)``.
  public func floats(_ name: String, rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor {
    try floatSlice(name, rows: rows, columns: columns, requireFinite: true)
  }
  /// See ``TensorStore/blockRows(_:)``.
  public func blockRows(_ name: String) -> (type: GGMLType, rowBytes: Int, data: UnsafeRawPointer)? {
    guard let info = tensors[name], info.dims.count == 2, info.type != .f32, BlockMatrix.supports(info.type),
      let data = bytes(of: info).baseAddress
    else { return nil }
    return (info.type, info.rowBytes, data)
  }
}

extension SafetensorsFile: TensorStore {
  /// Every tensor's shape.
  public var tensorShapes: [String: [Int]] {
    Dictionary(uniqueKeysWithValues: names.compactMap { n in info(n).map { (n, $0.shape) } })
  }
  /// See ``TensorStore/floats(_:rows:columns:)``.
  public func floats(_ name: String, rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor {
    let shape = info(name)?.shape ?? []
    return try floatSlice(name, expectedShape: shape, rows: rows, columns: columns, requireFinite: true)
  }
}

/// The weights of a model family's checkpoint, served to the layers by canonical name.
///
/// Opening checks the checkpoint against the configuration: every tensor the layers read is
/// there with its shape (a linear weight (out, in)), and every other tensor is refused unless
/// the family ignores it, so a wrong file is caught before any rank computes.
public final class CheckpointWeights: WeightSource, Sendable {
  /// The file.
  public let store: any TensorStore
  /// Canonical name -> checkpoint name, for every tensor the configuration reads.
  let names: [String: String]
  /// Heads of the query projection and of the key projection whose rows are stored in
  /// llama.cpp's interleaved RoPE order (Llama GGUFs); nil when rows are stored as read.
  let interleavedHeads: (query: Int, key: Int)?
  /// How matrices are kept (see ``WeightStorage``).
  public let storage: WeightStorage

  /// Checks `store` against `config` with `family`'s names; matrices are kept as `storage` says.
  public init(
    store: any TensorStore, config: TransformerConfig, family: any ModelFamily.Type, format: CheckpointFormat,
    storage: WeightStorage = .float32
  )
    throws
  {
    self.store = store
    self.storage = storage
    let shapes = store.tensorShapes
    var names: [String: String] = [:]
    for (name, shape) in config.parameterShapes.sorted(by: { $0.key < $1.key }) {
      guard let stored = family.checkpointName(name, format: format) else {
        throw AttnaxError.tensor(name: name, message: "the \(family.name) family has no such tensor (\(config.summary))")
      }
      guard let got = shapes[stored] else {
        throw AttnaxError.tensor(name: Escaping.shown(stored), message: "missing from '\(store.path)'")
      }
      // Canonical kernels are (in, out); the checkpoint stores (out, in).
      let want = name.hasSuffix(".kernel") ? shape.reversed() : shape
      guard got == want else {
        throw AttnaxError.tensor(name: Escaping.shown(stored), message: "shape \(got), expected \(want) in '\(store.path)'")
      }
      names[name] = stored
    }
    let used = Set(names.values)
    if let extra = shapes.keys.sorted().first(where: { !used.contains($0) && !family.isIgnored($0) }) {
      throw AttnaxError.tensor(
        name: Escaping.shown(extra),
        message: "unexpected in '\(store.path)': the \(family.name) layers (\(config.summary)) do not read it")
    }
    self.names = names
    let blocks = config.blockConfig
    interleavedHeads =
      format == .gguf && family.ggufInterleavesRotaryPairs ? (blocks.numHeads, blocks.kvHeads) : nil
  }

  func stored(_ name: String) throws -> String {
    guard let s = names[name] else { throw AttnaxError.tensor(name: name, message: "not in this model's checkpoint") }
    return s
  }

  /// Vectors (biases, norm scales) and embedding tables, by canonical name.
  public func load(_ name: String, shape: [Int], rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor {
    let s = try stored(name)
    if let heads = rotaryHeads(name), shape.count == 1 {
      return try unpermuted(s, heads: heads, width: shape[0], outRows: columns) {
        try self.store.floats(s, rows: nil, columns: $0)
      }
    }
    return try store.floats(s, rows: rows, columns: columns)
  }

  /// The (out, in) weights of `prefix` as stored, no transpose.
  public func matrix(
    _ prefix: String, outFeatures: Int, inFeatures: Int, outRows: Range<Int>?, inColumns: Range<Int>?
  )
    throws -> Tensor
  {
    let s = try stored("\(prefix).kernel")
    if let heads = rotaryHeads("\(prefix).kernel") {
      return try unpermuted(s, heads: heads, width: outFeatures, outRows: outRows) {
        try self.store.floats(s, rows: $0, columns: inColumns)
      }
    }
    return try store.floats(s, rows: outRows, columns: inColumns)
  }

  /// Drops the mapped pages the layers copied out.
  public func finishedLoading() { store.dropResidentPages() }

  /// A GGUF's blocks as stored when ``storage`` is `.native`, the slice's columns on block
  /// boundaries and the type one the kernels take; otherwise float32 (or Q8_0 for `.q8_0`).
  public func weights(
    _ name: String, outFeatures: Int, inFeatures: Int, outRows: Range<Int>?, inColumns: Range<Int>?
  ) throws -> WeightMatrix {
    let cols = inColumns ?? 0..<inFeatures
    guard storage == .native, let s = names[name], let raw = store.blockRows(s),
      cols.lowerBound % raw.type.blockElements == 0, cols.upperBound % raw.type.blockElements == 0
    else {
      return try floatWeights(name, outFeatures: outFeatures, inFeatures: inFeatures, outRows: outRows, inColumns: inColumns)
    }
    let rows = outRows ?? 0..<outFeatures
    // Stored rows in the order the layers read them (un-permuted heads for Llama GGUFs' Q and K).
    let order = try rotaryHeads(name).map { try Self.storedRows(rows, heads: $0, width: outFeatures, name: s) } ?? Array(rows)
    let skip = cols.lowerBound / raw.type.blockElements * raw.type.blockBytes
    let matrix = BlockMatrix(type: raw.type, rows: rows.count, columns: cols.count) { dst, stride in
      for (i, r) in order.enumerated() {
        (dst + i * stride).copyMemory(from: raw.data + r * raw.rowBytes + skip, byteCount: stride)
      }
    }
    try Self.checkFinite(matrix, name: s, file: store.path) { r, c in order[r] * inFeatures + cols.lowerBound + c }
    return .blocks(matrix)
  }

  /// The block size of the stored input dimension when ``storage`` keeps it (see
  /// ``WeightSource/inputBlock(_:inFeatures:)``).
  public func inputBlock(_ name: String, inFeatures: Int) -> Int {
    switch storage {
    case .float32: return 1
    case .q8_0: return inFeatures % 32 == 0 ? 32 : 1
    case .native:
      guard let s = names[name], let raw = store.blockRows(s) else { return 1 }
      return raw.type.blockElements
    }
  }

  /// A GGUF's block type's bytes per element when ``storage`` keeps its blocks, else the
  /// default (float32, or Q8_0 for `.q8_0`).
  public func bytesPerElement(_ name: String) -> Double {
    if storage == .native, let s = names[name], let raw = store.blockRows(s) {
      return Double(raw.type.blockBytes) / Double(raw.type.blockElements)
    }
    return Self.convertedBytesPerElement(name, storage: storage)
  }

  /// Refuses blocks whose values are not all finite (a NaN or infinite scale), naming the
  /// stored tensor and the first such element (`flat(row, column)` of the slice gives its index
  /// in the whole tensor), as the float path does; dequantizes 64 rows at a time.
  static func checkFinite(_ m: BlockMatrix, name: String, file: String, flat: (Int, Int) -> Int) throws {
    guard m.columns > 0 else { return }
    let chunk = 64
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunk * m.columns)
    defer { scratch.deallocate() }
    for r0 in stride(from: 0, to: m.rows, by: chunk) {
      let r1 = min(r0 + chunk, m.rows)
      m.dequantize(r0..<r1, into: scratch, stride: m.columns)
      if let i = Tensor.firstNonFinite(scratch, (r1 - r0) * m.columns) {
        throw AttnaxError.tensor(
          name: Escaping.shown(name),
          message: "element \(flat(r0 + i / m.columns, i % m.columns)) is \(scratch[i]) in file '\(file)'; weights must be finite"
        )
      }
    }
  }

  /// The head count when `name` is a query or key projection stored with interleaved pairs.
  func rotaryHeads(_ name: String) -> Int? {
    guard let h = interleavedHeads else { return nil }
    if name.contains(".self_attn.query_proj.") { return h.query }
    if name.contains(".self_attn.key_proj.") { return h.key }
    return nil
  }

  /// Rows `outRows` (whole heads) of a projection whose rows are stored per head as
  /// (head_dim / 2, 2) pairs, returned in split-half order (2, head_dim / 2): reads the heads'
  /// stored rows with `read` and reorders them.
  func unpermuted(
    _ stored: String, heads: Int, width: Int, outRows: Range<Int>?, read: (Range<Int>) throws -> Tensor
  ) throws -> Tensor {
    let rows = outRows ?? 0..<width
    let order = try Self.storedRows(rows, heads: heads, width: width, name: stored)
    let block = try read(rows)
    let columns = block.count / max(rows.count, 1)
    var out = [Float](repeating: 0, count: block.count)
    block.data.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for (i, from) in order.enumerated() {
          (dst.baseAddress! + i * columns).update(
            from: src.baseAddress! + (from - rows.lowerBound) * columns, count: columns)
        }
      }
    }
    return Tensor(shape: block.shape, data: out)
  }

  /// For each row of `rows` (whole heads of `width / heads`) in split-half order, the row it is
  /// stored at in llama.cpp's interleaved order: split-half row j = part · half + p of a head was
  /// stored at row p · 2 + part of that head.
  static func storedRows(_ rows: Range<Int>, heads: Int, width: Int, name: String) throws -> [Int] {
    let headDim = width / heads, half = headDim / 2
    guard rows.lowerBound % headDim == 0, rows.upperBound % headDim == 0 else {
      throw AttnaxError.tensor(name: name, message: "rows \(rows) do not cover whole heads of \(headDim)")
    }
    return rows.map { r in
      let j = r % headDim
      return r - j + (j % half) * 2 + j / half
    }
  }
}
