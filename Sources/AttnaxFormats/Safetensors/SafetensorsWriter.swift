#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A tensor to write with ``SafetensorsWriter``, tagged with its file dtype.
public enum SafetensorsValue: Sendable, Equatable {
  /// Written as `F32`.
  case f32(Tensor)
  /// Written as `I32`.
  case i32(IntTensor)
  /// Written as `U8`.
  case u8(MaskTensor)

  var dtype: SafetensorsDType {
    switch self {
    case .f32: return .f32
    case .i32: return .i32
    case .u8: return .u8
    }
  }

  /// Position in the data section: F32 first, then I32, then U8 (the reference's order).
  var dataRank: Int {
    switch self {
    case .f32: return 0
    case .i32: return 1
    case .u8: return 2
    }
  }

  var shape: [Int] {
    switch self {
    case let .f32(t): return t.shape
    case let .i32(t): return t.shape
    case let .u8(t): return t.shape
    }
  }

  var elementCount: Int {
    switch self {
    case let .f32(t): return t.data.count
    case let .i32(t): return t.data.count
    case let .u8(t): return t.data.count
    }
  }

  /// Calls `body` with the little-endian bytes of the elements.
  func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    #if _endian(big)
    switch self {
    case let .f32(t): return try t.data.map { $0.bitPattern.littleEndian }.withUnsafeBytes(body)
    case let .i32(t): return try t.data.map { $0.littleEndian }.withUnsafeBytes(body)
    case let .u8(t): return try t.data.withUnsafeBytes(body)
    }
    #else
    switch self {
    case let .f32(t): return try t.data.withUnsafeBytes(body)
    case let .i32(t): return try t.data.withUnsafeBytes(body)
    case let .u8(t): return try t.data.withUnsafeBytes(body)
    }
    #endif
  }
}

/// Writes `.safetensors` files readable by the reference implementation and by ``SafetensorsFile``.
///
/// The header lists `__metadata__` (if any) and the tensors with keys sorted by their UTF-8
/// bytes. Tensor data follows contiguously in the reference implementation's order (F32, then
/// I32, then U8; by name within a dtype), so each tensor is aligned to its element size. The
/// header is padded with spaces to a multiple of 8 bytes, as the reference implementation does.
public enum SafetensorsWriter {
  /// Writes `tensors` to `path` atomically.
  ///
  /// The file is first written to a temporary file in the same directory, synced, then renamed
  /// over `path`; on any error the temporary file is removed and `path` is left untouched.
  ///
  /// - Throws: ``AttnaxError/tensor(name:message:)`` for a duplicate or reserved name or a tensor
  ///   whose shape and element count disagree; ``AttnaxError/file(path:message:)`` if the file
  ///   cannot be written.
  public static func write(
    _ tensors: [(name: String, value: SafetensorsValue)], to path: String, metadata: [String: String]? = nil
  ) throws {
    let (header, ordered) = try layout(tensors, metadata: metadata)

    let slash = path.lastIndex(of: "/")
    let directory = slash.map { String(path[..<$0]) } ?? "."
    let baseName = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard !baseName.isEmpty else { throw AttnaxError.file(path: path, message: "is a directory path, not a file path") }
    let temp = "\(directory.isEmpty ? "" : directory)/.\(baseName).tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"

    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw AttnaxError.file(
        path: path, message: "cannot create a temporary file in '\(directory)': \(SafetensorsFile.errnoText())")
    }
    var isOpen = true
    do {
      try writeAll(fd, header, path: path)
      for (_, value) in ordered {
        try value.withBytes { try writeAll(fd, $0, path: path) }
      }
      guard fsync(fd) == 0 else {
        throw AttnaxError.file(path: path, message: "cannot be synced: \(SafetensorsFile.errnoText())")
      }
      isOpen = false
      guard close(fd) == 0 else {
        throw AttnaxError.file(path: path, message: "cannot be closed: \(SafetensorsFile.errnoText())")
      }
      guard rename(temp, path) == 0 else {
        throw AttnaxError.file(path: path, message: "cannot be replaced: \(SafetensorsFile.errnoText())")
      }
    } catch {
      if isOpen { close(fd) }
      unlink(temp)
      throw error
    }
    // Make the rename durable; failure here does not undo a completed write.
    let dfd = openDirectory(directory.isEmpty ? "/" : directory, O_RDONLY | O_CLOEXEC)
    if dfd >= 0 {
      _ = fsync(dfd)
      close(dfd)
    }
  }

  /// The whole file image in memory (header and data), as ``write(_:to:metadata:)`` would write it.
  static func encode(_ tensors: [(name: String, value: SafetensorsValue)], metadata: [String: String]? = nil) throws -> [UInt8] {
    let (header, ordered) = try layout(tensors, metadata: metadata)
    var out = header
    for (_, value) in ordered { value.withBytes { out.append(contentsOf: $0) } }
    return out
  }

  /// Validates the tensors and builds the length prefix + padded JSON header; returns the tensors
  /// in file order.
  static func layout(
    _ tensors: [(name: String, value: SafetensorsValue)], metadata: [String: String]?
  ) throws -> (header: [UInt8], ordered: [(name: String, value: SafetensorsValue)]) {
    var seen = Set<String>()
    for (name, value) in tensors {
      guard name != "__metadata__" else {
        throw AttnaxError.tensor(name: name, message: "is reserved for the metadata map and cannot name a tensor")
      }
      guard seen.insert(name).inserted else {
        throw AttnaxError.tensor(name: Escaping.shown(name), message: "is given twice")
      }
      let shape = value.shape
      guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == value.elementCount else {
        throw AttnaxError.tensor(
          name: Escaping.shown(name), message: "shape \(shape) does not hold its \(value.elementCount) elements")
      }
    }
    let byBytes: (String, String) -> Bool = { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    // Data order as in the reference implementation (F32, then I32, then U8; by name within a
    // dtype), so every tensor is naturally aligned; header keys are sorted by name.
    let ordered = tensors.sorted {
      $0.value.dataRank != $1.value.dataRank ? $0.value.dataRank < $1.value.dataRank : byBytes($0.name, $1.name)
    }
    var offsets: [String: (begin: Int, end: Int)] = [:]
    var offset = 0
    for (name, value) in ordered {
      let bytes = value.elementCount * value.dtype.size
      offsets[name] = (offset, offset + bytes)
      offset += bytes
    }

    var json = "{"
    var first = true
    if let metadata, !metadata.isEmpty {
      json += "\"__metadata__\":{"
      json += metadata.keys.sorted(by: byBytes).map { "\(Escaping.jsonQuoted($0)):\(Escaping.jsonQuoted(metadata[$0]!))" }
        .joined(separator: ",")
      json += "}"
      first = false
    }
    for (name, value) in tensors.sorted(by: { byBytes($0.name, $1.name) }) {
      if !first { json += "," }
      first = false
      let shape = value.shape.map(String.init).joined(separator: ",")
      let (begin, end) = offsets[name]!
      json +=
        "\(Escaping.jsonQuoted(name)):{\"dtype\":\"\(value.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(begin),\(end)]}"
    }
    json += "}"
    var body = Array(json.utf8)
    body.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - body.count % 8) % 8))
    var header = [UInt8]()
    header.reserveCapacity(8 + body.count)
    let n = UInt64(body.count)
    for i in 0..<8 { header.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
    header.append(contentsOf: body)
    return (header, ordered)
  }

  private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
    try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
  }

  private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    guard var p = bytes.baseAddress else { return }
    var left = bytes.count
    while left > 0 {
      let n = writeBytes(fd, p, left)
      if n < 0 {
        if errno == EINTR { continue }
        throw AttnaxError.file(path: path, message: "cannot be written: \(SafetensorsFile.errnoText())")
      }
      p += n
      left -= n
    }
  }
}

// File-scope wrappers: inside `SafetensorsWriter` the names `open` and `write` would resolve
// to its own members.
private func writeBytes(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
private func openDirectory(_ path: String, _ flags: Int32) -> Int32 { open(path, flags) }
