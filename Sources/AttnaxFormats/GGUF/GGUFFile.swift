#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One tensor of a GGUF file as its tensor table describes it, validated: dims positive, data
/// inside the file, no overlap with another tensor.
public struct GGUFTensorInfo: Sendable, Equatable {
  /// The tensor's name (unique in its file).
  public let name: String
  /// Extents as stored, `ne0` first: `ne0` is the length of a contiguous row.
  public let dims: [Int]
  /// The element type.
  public let type: GGMLType
  /// Absolute byte offset of the tensor's data in the file.
  public let offset: Int
  /// Bytes of the tensor's data.
  public let byteCount: Int

  /// Row-major (numpy) shape: ``dims`` reversed, so the last axis is the contiguous one.
  public var shape: [Int] { dims.reversed() }
  /// Number of elements.
  public var elementCount: Int { dims.reduce(1, *) }
  /// Rows when the tensor is viewed as (rowCount, rowLength): the product of `dims[1...]`.
  public var rowCount: Int { dims.dropFirst().reduce(1, *) }
  /// Elements per row: `dims[0]` (1 for a tensor without dims), a multiple of the type's block size.
  public var rowLength: Int { dims.first ?? 1 }
  /// Bytes per row: ``rowLength`` in blocks times the block size in bytes.
  public var rowBytes: Int { rowLength / type.blockElements * type.blockBytes }
}

/// A read-only, memory-mapped GGUF file (llama.cpp's model format) with a fully validated
/// header, metadata and tensor table.
///
/// Opening the file parses the magic, the version (2 or 3), every metadata value (all 13 value
/// types, nested arrays included) and every tensor info, and checks each count, length, offset
/// and size against the file before using it: names are unique, each tensor has at most 4
/// positive dims whose product does not overflow, its first dim is a whole number of blocks of
/// its type, and its data is aligned to `general.alignment` (a power of two, default 32), lies
/// inside the file and overlaps no other tensor's. Tensor data is read in place from the mapping
/// (as llama.cpp does) only when a tensor is asked for; the file must not be truncated or
/// rewritten in place while it is open.
///
/// Every error is one line: ``AttnaxError/file(path:message:)`` when the file as a whole is bad
/// (or a metadata value has the wrong type), ``AttnaxError/tensor(name:message:)`` when one tensor
/// is (its message names the file).
public final class GGUFFile: @unchecked Sendable {
  // @unchecked Sendable: every stored property is immutable after `init`, and the mapping is
  // read-only and owned by this object until `deinit`.

  /// The path the file was opened from.
  public let path: String
  /// The GGUF version (2 or 3).
  public let version: Int
  /// Metadata keys in file order.
  public let metadataKeys: [String]
  /// Metadata values by key.
  public let metadata: [String: GGUFValue]
  /// Tensor names in file order.
  public let tensorNames: [String]
  /// Tensor infos by name.
  public let tensors: [String: GGUFTensorInfo]
  /// The alignment of the data section and of each tensor's data (`general.alignment`, or 32).
  public let alignment: Int
  /// Absolute byte offset where the data section starts.
  public let dataStart: Int

  /// Start of the mapping (or of the owned buffer); nil for an empty image.
  let base: UnsafeRawPointer?
  /// Length of the read-only mapping, or 0 when `base` is an in-memory copy.
  private let mappedSize: Int
  private let release: () -> Void

  /// Opens and memory-maps the GGUF file at `path` and validates its header and tensor table.
  ///
  /// - Throws: ``AttnaxError/file(path:message:)`` if the file cannot be read or is malformed;
  ///   ``AttnaxError/tensor(name:message:)`` if one tensor info is invalid.
  public init(path: String) throws {
    let file = try MappedFile(path: path)
    close(file.fd)
    let size = file.size, mapping = file.base
    let parsed: GGUFParser.Parsed
    do {
      parsed = try GGUFParser.parse(UnsafeRawBufferPointer(start: mapping, count: size), path: path)
    } catch {
      if let mapping { munmap(mapping, size) }
      throw error
    }
    self.path = path
    self.base = mapping.map { UnsafeRawPointer($0) }
    self.mappedSize = mapping == nil ? 0 : size
    self.release = { if let mapping { munmap(mapping, size) } }
    (version, metadataKeys, metadata) = (parsed.version, parsed.metadataKeys, parsed.metadata)
    (tensorNames, tensors) = (parsed.tensorNames, parsed.tensors)
    (alignment, dataStart) = (parsed.alignment, parsed.dataStart)
  }

  /// Parses an in-memory copy of a GGUF image; `path` is only used in error messages.
  ///
  /// Same validation as ``init(path:)``; used by tests and the fuzz target.
  init(bytes: [UInt8], path: String) throws {
    let parsed = try bytes.withUnsafeBytes { try GGUFParser.parse($0, path: path) }
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
    bytes.withUnsafeBytes { if let src = $0.baseAddress { buffer.copyMemory(from: src, byteCount: $0.count) } }
    self.path = path
    self.base = UnsafeRawPointer(buffer)
    self.mappedSize = 0
    self.release = { buffer.deallocate() }
    (version, metadataKeys, metadata) = (parsed.version, parsed.metadataKeys, parsed.metadata)
    (tensorNames, tensors) = (parsed.tensorNames, parsed.tensors)
    (alignment, dataStart) = (parsed.alignment, parsed.dataStart)
  }

  deinit { release() }

  /// Lets the kernel drop the file pages this process touched (`MADV_DONTNEED`): after the
  /// weights have been copied out, the mapping no longer counts toward resident memory. Later
  /// reads fault the pages back in, so this is always safe.
  public func dropResidentPages() {
    guard mappedSize > 0, let base else { return }
    _ = madvise(UnsafeMutableRawPointer(mutating: base), mappedSize, MADV_DONTNEED)
  }

  /// The raw bytes of `tensor`'s data, read in place; valid while this file is alive.
  ///
  /// `tensor` must come from this file's ``tensors``; an info that does not (another file's)
  /// gives an empty buffer.
  public func bytes(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
    guard let own = tensors[tensor.name], own == tensor, let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(start: base + own.offset, count: own.byteCount)
  }

  // MARK: Typed metadata

  private func typeError(_ key: String, _ value: GGUFValue, expected: String) -> AttnaxError {
    .file(path: path, message: "metadata key '\(Escaping.shown(key))' is \(value.typeName), expected \(expected)")
  }

  private func integer(_ key: String, _ value: GGUFValue, index: Int? = nil) throws -> Int {
    guard value.isInteger else { throw typeError(key, value, expected: index == nil ? "an integer" : "an array of integers") }
    guard let v = value.intValue else {
      let place = index.map { " element \($0)" } ?? ""
      throw AttnaxError.file(
        path: path, message: "metadata key '\(Escaping.shown(key))'\(place) is \(value), which does not fit in Int")
    }
    return v
  }

  /// The string at `key`; nil when absent.
  /// - Throws: ``AttnaxError/file(path:message:)`` naming the key and the type found if it is not a string.
  public func string(_ key: String) throws -> String? {
    guard let value = metadata[key] else { return nil }
    guard case let .string(s) = value else { throw typeError(key, value, expected: "a string") }
    return s
  }

  /// The integer at `key` (any integer type); nil when absent.
  /// - Throws: ``AttnaxError/file(path:message:)`` if it is not an integer or does not fit in `Int`.
  public func int(_ key: String) throws -> Int? {
    guard let value = metadata[key] else { return nil }
    return try integer(key, value)
  }

  /// The number at `key` (float32, float64, or an integer); nil when absent.
  /// - Throws: ``AttnaxError/file(path:message:)`` naming the key and the type found if it is not a number.
  public func double(_ key: String) throws -> Double? {
    guard let value = metadata[key] else { return nil }
    guard let d = value.doubleValue else { throw typeError(key, value, expected: "a number") }
    return d
  }

  /// The boolean at `key`; nil when absent.
  /// - Throws: ``AttnaxError/file(path:message:)`` naming the key and the type found if it is not a bool.
  public func bool(_ key: String) throws -> Bool? {
    guard let value = metadata[key] else { return nil }
    guard case let .bool(b) = value else { throw typeError(key, value, expected: "a bool") }
    return b
  }

  /// The array of strings at `key`; nil when absent.
  /// - Throws: ``AttnaxError/file(path:message:)`` if it is not an array of strings.
  public func strings(_ key: String) throws -> [String]? {
    guard let value = metadata[key] else { return nil }
    guard case let .array(items) = value else { throw typeError(key, value, expected: "an array of strings") }
    return try items.map {
      guard case let .string(s) = $0 else { throw typeError(key, value, expected: "an array of strings") }
      return s
    }
  }

  /// The array of integers (any integer type) at `key`; nil when absent.
  /// - Throws: ``AttnaxError/file(path:message:)`` if it is not an array of integers or an
  ///   element does not fit in `Int`.
  public func ints(_ key: String) throws -> [Int]? {
    guard let value = metadata[key] else { return nil }
    guard case let .array(items) = value else { throw typeError(key, value, expected: "an array of integers") }
    var out: [Int] = []
    out.reserveCapacity(items.count)
    for (i, item) in items.enumerated() {
      guard item.isInteger else { throw typeError(key, value, expected: "an array of integers") }
      out.append(try integer(key, item, index: i))
    }
    return out
  }

}
