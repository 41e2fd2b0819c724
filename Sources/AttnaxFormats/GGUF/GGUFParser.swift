/// Reads the header, metadata and tensor table of a GGUF image: every count, length, offset and
/// size is checked against the bytes that are there before it is used, so no input can trap or
/// make the parser allocate more than a small multiple of the file's size.
///
/// Layout (little-endian): magic `GGUF`, uint32 version (2 or 3), uint64 tensor count, uint64
/// metadata count; the metadata (string key, uint32 value type, value); the tensor infos
/// (string name, uint32 n_dims, n_dims uint64 dims, uint32 ggml type, uint64 offset relative to
/// the data section); padding to `general.alignment` (default 32); the data section.
struct GGUFParser {
  struct Parsed {
    var version: Int
    var metadataKeys: [String]
    var metadata: [String: GGUFValue]
    var tensorNames: [String]
    var tensors: [String: GGUFTensorInfo]
    var alignment: Int
    var dataStart: Int
  }

  /// Bytes of the fixed header: magic, version, tensor count, metadata count.
  static let headerBytes = 24
  /// Dims a tensor may have (ggml's GGML_MAX_DIMS).
  static let maxDims = 4
  /// How deep arrays may nest inside arrays (llama.cpp allows none; the format allows any).
  static let maxArrayDepth = 8
  /// The alignment of the data section and of each tensor when `general.alignment` is absent.
  static let defaultAlignment = 32
  /// Fewest bytes one metadata entry takes: key length, value type, a one-byte value.
  static let minimumEntryBytes = 8 + 4 + 1
  /// Fewest bytes one tensor info takes: name length, n_dims, type, offset.
  static let minimumTensorInfoBytes = 8 + 4 + 4 + 8

  private let bytes: UnsafeRawBufferPointer
  private let path: String
  private var position = 0

  private init(bytes: UnsafeRawBufferPointer, path: String) {
    self.bytes = bytes
    self.path = path
  }

  /// Parses and validates `bytes`; `path` names the file in error messages.
  static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Parsed {
    var parser = GGUFParser(bytes: bytes, path: path)
    return try parser.parseFile()
  }

  private func bad(_ message: String) -> AttnaxError { .file(path: path, message: message) }

  private func badTensor(_ name: String, _ message: String) -> AttnaxError {
    .tensor(name: Escaping.shown(name), message: "\(message) in file '\(path)'")
  }

  // MARK: The file

  private mutating func parseFile() throws -> Parsed {
    let magic = try take(4, "the magic")
    guard magic.elementsEqual("GGUF".utf8) else {
      let shown = magic.map { (0x20..<0x7F).contains($0) ? String(UnicodeScalar($0)) : "\\x\(String($0, radix: 16))" }
      throw bad("does not start with the GGUF magic (found '\(shown.joined())')")
    }
    let version = try uint32("the version")
    guard version == 2 || version == 3 else {
      let hint = version.byteSwapped == 2 || version.byteSwapped == 3 ? " (a big-endian file?)" : ""
      throw bad("has GGUF version \(version)\(hint); versions 2 and 3 are supported")
    }
    let tensorCount = try count("the tensor count", each: Self.minimumTensorInfoBytes, after: 8)
    let entryCount = try count("the metadata count", each: Self.minimumEntryBytes)

    var keys: [String] = []
    var metadata: [String: GGUFValue] = [:]
    keys.reserveCapacity(entryCount)
    metadata.reserveCapacity(entryCount)
    for i in 0..<entryCount {
      let key = try string("the key of metadata entry \(i)")
      let shown = Escaping.shown(key)
      let type = try valueType("metadata key '\(shown)'")
      let value = try value(type, "metadata key '\(shown)'", depth: 0)
      guard metadata.updateValue(value, forKey: key) == nil else {
        throw bad("has metadata key '\(shown)' twice")
      }
      keys.append(key)
    }

    let alignment = try Self.alignment(metadata, path: path)
    var names: [String] = []
    var tensors: [String: GGUFTensorInfo] = [:]
    var relativeOffsets: [String: Int] = [:]
    names.reserveCapacity(tensorCount)
    tensors.reserveCapacity(tensorCount)
    for i in 0..<tensorCount {
      let (info, relative) = try tensorInfo(i)
      guard tensors.updateValue(info, forKey: info.name) == nil else {
        throw badTensor(info.name, "appears twice in the tensor table")
      }
      relativeOffsets[info.name] = relative
      names.append(info.name)
    }

    // The data section starts at the next multiple of the alignment; tensors lie inside it.
    let padding = (alignment - position % alignment) % alignment
    let dataStart = position + padding
    let dataBytes = bytes.count - dataStart
    for name in names {
      guard let info = tensors[name], let relative = relativeOffsets[name] else { continue }
      guard relative % alignment == 0 else {
        throw badTensor(name, "offset \(relative) is not a multiple of the alignment \(alignment)")
      }
      guard dataBytes >= 0, relative <= dataBytes, info.byteCount <= dataBytes - relative else {
        throw badTensor(
          name,
          "data (\(info.byteCount) bytes at data offset \(relative)) runs past the end of the file "
            + "(\(bytes.count) bytes, data section from byte \(dataStart))")
      }
      tensors[name] = GGUFTensorInfo(
        name: name, dims: info.dims, type: info.type, offset: dataStart + relative, byteCount: info.byteCount)
    }
    let spans = names.compactMap { tensors[$0] }.sorted { ($0.offset, $0.name) < ($1.offset, $1.name) }
    for (a, b) in zip(spans, spans.dropFirst()) where b.offset < a.offset + a.byteCount {
      throw badTensor(
        b.name,
        "data at byte \(b.offset) overlaps that of '\(Escaping.shown(a.name))' (bytes \(a.offset)..<\(a.offset + a.byteCount))")
    }
    return Parsed(
      version: Int(version), metadataKeys: keys, metadata: metadata, tensorNames: names, tensors: tensors,
      alignment: alignment, dataStart: dataStart)
  }

  /// `general.alignment`: a uint32 power of two, 32 when absent.
  private static func alignment(_ metadata: [String: GGUFValue], path: String) throws -> Int {
    guard let value = metadata["general.alignment"] else { return defaultAlignment }
    guard case let .uint32(a) = value else {
      throw AttnaxError.file(path: path, message: "metadata key 'general.alignment' is \(value.typeName), expected uint32")
    }
    guard a > 0, a & (a - 1) == 0 else {
      throw AttnaxError.file(path: path, message: "metadata key 'general.alignment' is \(a), not a power of two")
    }
    return Int(a)
  }

  // MARK: Tensor infos

  /// Tensor info `index`: its validated description (offset still relative) and relative offset.
  private mutating func tensorInfo(_ index: Int) throws -> (GGUFTensorInfo, Int) {
    let name = try string("the name of tensor \(index)")
    let what = "tensor '\(Escaping.shown(name))'"
    let nDims = try uint32("the dimension count of \(what)")
    guard nDims <= Self.maxDims else {
      throw badTensor(name, "has \(nDims) dimensions; at most \(Self.maxDims) are allowed")
    }
    var dims: [Int] = []
    var elements = 1
    for d in 0..<Int(nDims) {
      let raw = try uint64("dimension \(d) of \(what)")
      guard raw >= 1, raw <= UInt64(Int.max) else {
        throw badTensor(name, "dimension \(d) is \(Int64(bitPattern: raw)); dimensions must be positive")
      }
      let (product, overflow) = elements.multipliedReportingOverflow(by: Int(raw))
      guard !overflow else { throw badTensor(name, "has too many elements (dimensions overflow)") }
      dims.append(Int(raw))
      elements = product
    }
    let typeID = try uint32("the ggml type of \(what)")
    guard let type = GGMLType(rawValue: typeID) else {
      throw badTensor(name, "has unknown ggml type id \(typeID)")
    }
    let rawOffset = try uint64("the data offset of \(what)")
    guard rawOffset <= UInt64(bytes.count) else {
      throw badTensor(name, "data offset \(rawOffset) is past the end of the file (\(bytes.count) bytes)")
    }
    let rowLength = dims.first ?? 1
    guard rowLength % type.blockElements == 0 else {
      throw badTensor(
        name, "first dimension \(rowLength) is not a multiple of the \(type.name) block size \(type.blockElements)")
    }
    let (byteCount, overflow) = (elements / type.blockElements).multipliedReportingOverflow(by: type.blockBytes)
    guard !overflow else { throw badTensor(name, "has too many bytes (dimensions overflow)") }
    let info = GGUFTensorInfo(name: name, dims: dims, type: type, offset: Int(rawOffset), byteCount: byteCount)
    return (info, Int(rawOffset))
  }

  // MARK: Values

  private mutating func valueType(_ what: String) throws -> GGUFValueType {
    let id = try uint32("the value type of \(what)")
    guard let type = GGUFValueType(rawValue: id) else { throw bad("\(what) has unknown value type id \(id)") }
    return type
  }

  private mutating func value(_ type: GGUFValueType, _ what: String, depth: Int) throws -> GGUFValue {
    switch type {
    case .uint8: return .uint8(try load(what))
    case .int8: return .int8(try load(what))
    case .uint16: return .uint16(try load(what))
    case .int16: return .int16(try load(what))
    case .uint32: return .uint32(try load(what))
    case .int32: return .int32(try load(what))
    case .uint64: return .uint64(try load(what))
    case .int64: return .int64(try load(what))
    case .float32: return .float32(Float(bitPattern: try load(what)))
    case .float64: return .float64(Double(bitPattern: try load(what)))
    case .bool:
      let b: UInt8 = try load(what)
      guard b <= 1 else { throw bad("\(what) holds bool byte \(b), not 0 or 1") }
      return .bool(b == 1)
    case .string: return .string(try string(what))
    case .array:
      guard depth < Self.maxArrayDepth else {
        throw bad("\(what) nests arrays more than \(Self.maxArrayDepth) deep")
      }
      let elementType = try valueType("the elements of \(what)")
      let n = try count("the element count of \(what)", each: elementType.minimumBytes)
      var items: [GGUFValue] = []
      items.reserveCapacity(n)
      for i in 0..<n {
        items.append(try value(elementType, "element \(i) of \(what)", depth: depth + 1))
      }
      return .array(items)
    }
  }

  // MARK: Bounded reads

  /// `n` bytes at the cursor, which moves past them; an error naming `what` if the file ends.
  private mutating func take(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
    let remaining = bytes.count - position
    guard n <= remaining else {
      throw bad("ends at byte \(bytes.count) inside \(what()) (\(n) bytes needed at byte \(position))")
    }
    defer { position += n }
    return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
  }

  private mutating func load<T: FixedWidthInteger>(_ what: @autoclosure () -> String) throws -> T {
    let raw = try take(MemoryLayout<T>.size, what())
    return T(littleEndian: raw.loadUnaligned(as: T.self))
  }

  private mutating func uint32(_ what: @autoclosure () -> String) throws -> UInt32 { try load(what()) }

  private mutating func uint64(_ what: @autoclosure () -> String) throws -> UInt64 { try load(what()) }

  /// A uint64 count of items taking at least `each` bytes apiece, of which at least `after`
  /// further bytes must follow: checked against the bytes left, so it is safe to reserve.
  private mutating func count(_ what: String, each: Int, after: Int = 0) throws -> Int {
    let n = try uint64(what)
    let left = max(0, bytes.count - position - after)
    guard n <= UInt64(left / each) else {
      throw bad("\(what) \(n) is more than the \(bytes.count - position) bytes left can hold")
    }
    return Int(n)
  }

  /// A GGUF string: uint64 length, then that many bytes of UTF-8.
  private mutating func string(_ what: String) throws -> String {
    let n = try uint64("the length of \(what)")
    guard n <= UInt64(bytes.count - position) else {
      throw bad("\(what) has length \(n), past the end of the file (\(bytes.count - position) bytes left)")
    }
    let raw = try take(Int(n), what)
    guard let s = String(validating: raw, as: UTF8.self) else { throw bad("\(what) is not valid UTF-8") }
    return s
  }
}
