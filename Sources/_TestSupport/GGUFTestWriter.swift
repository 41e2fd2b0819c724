import AttnaxFormats

/// Builds GGUF images in tests: metadata of every value type, tensors with raw data bytes, and
/// the knobs refusal tests need (version, explicit offsets, raw type ids, unaligned data).
///
/// An independent encoder of the format (it shares no code with the reader): magic, uint32
/// version, uint64 counts, the metadata, the tensor infos, padding to `alignment`, then each
/// tensor's bytes padded to `alignment`, at the offsets written in its info.
public struct GGUFTestWriter {
  /// One tensor: its stored dims (`ne0` first), ggml type id, data, and an optional offset (relative
  /// to the data section) written instead of the computed one.
  public struct TensorEntry {
    /// Name written to the tensor table.
    public var name: String
    /// Dims as stored, `ne0` first.
    public var dims: [UInt64]
    /// The ggml type id.
    public var type: UInt32
    /// The data bytes.
    public var data: [UInt8]
    /// When set, the offset written to the tensor info instead of where the data really goes.
    public var offset: UInt64?

    /// A tensor entry; see the properties.
    public init(name: String, dims: [UInt64], type: UInt32, data: [UInt8], offset: UInt64? = nil) {
      (self.name, self.dims, self.type, self.data, self.offset) = (name, dims, type, data, offset)
    }
  }

  /// The GGUF version written.
  public var version: UInt32 = 3
  /// Padding unit for the data section and each tensor (write `general.alignment` yourself to change it in the file).
  public var alignment = 32
  /// Metadata in file order.
  public var metadata: [(key: String, value: GGUFValue)] = []
  /// Tensors in file order.
  public var tensors: [TensorEntry] = []
  /// Element type written for empty arrays (uint32 by default).
  public var emptyArrayType: UInt32 = 4

  /// An empty GGUF v3 image.
  public init() {}

  /// Adds an F32 tensor of `shape` (row-major: stored dims are `shape` reversed).
  public mutating func addF32(_ name: String, shape: [Int], values: [Float]) {
    let data = values.flatMap { littleEndianBytes($0.bitPattern) }
    tensors.append(TensorEntry(name: name, dims: shape.reversed().map { UInt64($0) }, type: 0, data: data))
  }

  /// The image.
  public func bytes() -> [UInt8] {
    var out: [UInt8] =
      Array("GGUF".utf8) + littleEndianBytes(version) + littleEndianBytes(UInt64(tensors.count))
      + littleEndianBytes(UInt64(metadata.count))
    for (key, value) in metadata {
      out += string(key) + littleEndianBytes(typeID(value)) + encode(value)
    }
    var offset = 0
    var offsets: [Int] = []
    for t in tensors {
      offsets.append(offset)
      offset += padded(t.data.count)
    }
    for (t, at) in zip(tensors, offsets) {
      out +=
        string(t.name) + littleEndianBytes(UInt32(t.dims.count)) + t.dims.flatMap { littleEndianBytes($0) }
        + littleEndianBytes(t.type) + littleEndianBytes(t.offset ?? UInt64(at))
    }
    out += [UInt8](repeating: 0, count: padded(out.count) - out.count)
    for t in tensors {
      out += t.data + [UInt8](repeating: 0, count: padded(t.data.count) - t.data.count)
    }
    return out
  }

  private func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

  private func string(_ s: String) -> [UInt8] { littleEndianBytes(UInt64(s.utf8.count)) + Array(s.utf8) }

  private func typeID(_ value: GGUFValue) -> UInt32 {
    switch value {
    case .uint8: return 0
    case .int8: return 1
    case .uint16: return 2
    case .int16: return 3
    case .uint32: return 4
    case .int32: return 5
    case .float32: return 6
    case .bool: return 7
    case .string: return 8
    case .array: return 9
    case .uint64: return 10
    case .int64: return 11
    case .float64: return 12
    }
  }

  private func encode(_ value: GGUFValue) -> [UInt8] {
    switch value {
    case let .uint8(v): return [v]
    case let .int8(v): return [UInt8(bitPattern: v)]
    case let .uint16(v): return littleEndianBytes(v)
    case let .int16(v): return littleEndianBytes(v)
    case let .uint32(v): return littleEndianBytes(v)
    case let .int32(v): return littleEndianBytes(v)
    case let .uint64(v): return littleEndianBytes(v)
    case let .int64(v): return littleEndianBytes(v)
    case let .float32(v): return littleEndianBytes(v.bitPattern)
    case let .float64(v): return littleEndianBytes(v.bitPattern)
    case let .bool(v): return [v ? 1 : 0]
    case let .string(s): return string(s)
    case let .array(items):
      let type = items.first.map(typeID) ?? emptyArrayType
      return littleEndianBytes(type) + littleEndianBytes(UInt64(items.count)) + items.flatMap(encode)
    }
  }
}

/// The little-endian bytes of an integer.
public func littleEndianBytes<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
  (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
}
