#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only, memory-mapped `.safetensors` file with a fully validated header.
///
/// The format is an 8-byte little-endian header length `n`, `n` bytes of JSON, then the data
/// section. Every header entry is checked when the file is opened: its dtype is known, its shape
/// holds non-negative integers, its `data_offsets` `[begin, end]` lie inside the data section,
/// `end - begin` equals the element count times the dtype size, and no two tensors share bytes.
/// An optional `__metadata__` entry must map strings to strings.
///
/// Tensor bytes are only touched when a tensor (or a slice of one) is read, so a rank that loads
/// its shard with ``floatSlice(_:expectedShape:rows:columns:requireFinite:)`` reads only the bytes
/// it needs. With `requireFinite` (model weights), every value read is checked as it is copied.
/// The file must not be truncated or rewritten in place while it is open (atomic replacement, as
/// done by ``SafetensorsWriter``, is safe).
///
/// Every error is an ``AttnaxError/file(path:message:)`` (the file as a whole is bad) or an
/// ``AttnaxError/tensor(name:message:)`` (one tensor is bad, missing or not what was asked for;
/// the message names the file).
public final class SafetensorsFile: @unchecked Sendable {
  // @unchecked Sendable: every stored property is immutable after `init`, and the mapping is
  // read-only and owned by this object until `deinit`.

  /// The path the file was opened from.
  public let path: String
  /// Names of all tensors in the file, sorted.
  public let names: [String]
  /// The `__metadata__` string map (empty when absent).
  public let metadata: [String: String]
  /// The raw JSON header exactly as stored (including any padding), e.g. for hashing a model.
  public let headerBytes: [UInt8]

  struct Entry {
    var dtype: SafetensorsDType
    var shape: [Int]
    var begin: Int
    var end: Int
    var count: Int
  }

  private let entries: [String: Entry]
  /// Start of the mapping (or of the owned buffer).
  private let base: UnsafeRawPointer
  /// Length of the read-only mapping, or 0 when `base` is an in-memory copy.
  private let mappedSize: Int
  /// An open descriptor for positioned reads of tensor data (-1 for in-memory copies): reads go
  /// through the page cache and never count toward this process's resident memory.
  private let readFD: Int32
  /// Byte offset of the data section from `base`.
  private let dataStart: Int
  private let release: (UnsafeRawPointer) -> Void

  /// Opens and memory-maps the file at `path` and validates its header.
  ///
  /// - Throws: ``AttnaxError/file(path:message:)`` if the file cannot be read or its header is
  ///   malformed; ``AttnaxError/tensor(name:message:)`` if one header entry is invalid.
  public init(path: String) throws {
    let file = try MappedFile(path: path, minimumSize: 8) {
      "is \($0) bytes long, too short for a safetensors header (8-byte length + JSON)"
    }
    defer { close(file.fd) }
    let fd = file.fd, size = file.size, mapped = file.base!
    let base = UnsafeRawPointer(mapped)
    let parsed: Parsed
    do {
      parsed = try Self.parse(UnsafeRawBufferPointer(start: base, count: size), path: path)
    } catch {
      munmap(mapped, size)
      throw error
    }
    self.path = path
    self.base = base
    self.release = { munmap(UnsafeMutableRawPointer(mutating: $0), size) }
    self.mappedSize = size
    self.readFD = dup(fd)
    self.names = parsed.names
    self.metadata = parsed.metadata
    self.headerBytes = parsed.headerBytes
    self.entries = parsed.entries
    self.dataStart = parsed.dataStart
  }

  /// Parses an in-memory copy of a safetensors file; `path` is only used in error messages.
  ///
  /// Same validation as ``init(path:)``; used by tests that mutate file images in memory.
  init(bytes: [UInt8], path: String) throws {
    let parsed = try bytes.withUnsafeBytes { try Self.parse($0, path: path) }
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
    bytes.withUnsafeBytes { if let src = $0.baseAddress { buffer.copyMemory(from: src, byteCount: $0.count) } }
    self.path = path
    self.base = UnsafeRawPointer(buffer)
    self.release = { UnsafeMutableRawPointer(mutating: $0).deallocate() }
    self.mappedSize = 0
    self.readFD = -1
    self.names = parsed.names
    self.metadata = parsed.metadata
    self.headerBytes = parsed.headerBytes
    self.entries = parsed.entries
    self.dataStart = parsed.dataStart
  }

  deinit {
    release(base)
    if readFD >= 0 { close(readFD) }
  }

  /// Reads `count` bytes at data-section offset `offset` into `dst` with pread (or from the
  /// in-memory copy); false if the file came up short.
  private func readData(into dst: UnsafeMutableRawPointer, offset: Int, count: Int) -> Bool {
    guard readFD >= 0 else {
      dst.copyMemory(from: base + dataStart + offset, byteCount: count)
      return true
    }
    var done = 0
    while done < count {
      let n = pread(readFD, dst + done, count - done, off_t(dataStart + offset + done))
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { return false }
      done += n
    }
    return true
  }

  /// Lets the kernel drop the file pages this process touched (`MADV_DONTNEED`): after a rank
  /// has copied out its slices, the mapping no longer counts toward its resident memory.
  /// Later reads fault the pages back in, so this is always safe.
  public func dropResidentPages() {
    guard mappedSize > 0 else { return }
    _ = madvise(UnsafeMutableRawPointer(mutating: base), mappedSize, MADV_DONTNEED)
  }

  /// The dtype (as spelled in the file, e.g. `"F32"`) and shape of tensor `name`, or `nil` if absent.
  public func info(_ name: String) -> (dtype: String, shape: [Int])? {
    entries[name].map { ($0.dtype.rawValue, $0.shape) }
  }

  /// Whether the file holds a tensor called `name`.
  public func contains(_ name: String) -> Bool { entries[name] != nil }

  // MARK: Reading

  /// Reads the whole F32 tensor `name`.
  ///
  /// - Parameters:
  ///   - expected: if given, the tensor's shape must equal it.
  ///   - requireFinite: refuse a NaN or an infinity (model weights), naming the first one's flat
  ///     index in the tensor; checked chunk by chunk as the bytes are copied (one pass).
  /// - Throws: ``AttnaxError/tensor(name:message:)`` if the tensor is missing, not F32, has
  ///   another shape (the message gives both shapes), or holds a non-finite value when asked.
  public func float(_ name: String, shape expected: [Int]? = nil, requireFinite: Bool = false) throws -> Tensor {
    let e = try entry(name, dtypes: [.f32])
    if let expected { try check(name, e, expected) }
    return try floatBlock(
      name, e, rows: 0..<(e.shape.count == 2 ? e.shape[0] : 1), columnRanges: nil, requireFinite: requireFinite)
  }

  /// Reads a rectangular part of a 2-D F32 tensor, or a range of elements of a 1-D one; F16 and
  /// BF16 tensors (Hugging Face checkpoints) are converted to float32 as they are read.
  ///
  /// Only the selected bytes are copied out of the mapping. Tensor-parallel loading uses this:
  /// a column-parallel kernel `(in, out)` takes a column range, a row-parallel kernel a row
  /// range, and a column-parallel bias `(out,)` takes `columns` of the 1-D tensor.
  ///
  /// - Parameters:
  ///   - expectedShape: the full tensor's shape, which must match the file.
  ///   - rows: rows to keep (2-D only); `nil` keeps all.
  ///   - columns: columns (2-D) or elements (1-D) to keep; `nil` keeps all.
  ///   - requireFinite: refuse a NaN or an infinity in the slice (model weights), naming the
  ///     first one's flat index in the whole tensor.
  /// - Returns: a tensor of shape `(rows.count, columns.count)` for 2-D, `(columns.count)` for 1-D.
  public func floatSlice(
    _ name: String, expectedShape: [Int], rows: Range<Int>? = nil, columns: Range<Int>? = nil,
    requireFinite: Bool = false
  ) throws -> Tensor {
    let e = try entry(name, dtypes: [.f32, .f16, .bf16])
    try check(name, e, expectedShape)
    let (rowRange, _) = try sliceGeometry(name, e, rows: rows)
    return try floatBlock(name, e, rows: rowRange, columnRanges: columns.map { [$0] }, requireFinite: requireFinite)
  }

  /// Reads several column ranges of a 2-D F32 tensor (or element ranges of a 1-D one) and
  /// concatenates them along the last axis, in the order given.
  ///
  /// - Returns: shape `(rows, sum of range lengths)` for 2-D, `(sum of range lengths)` for 1-D.
  public func floatColumns(_ name: String, expectedShape: [Int], columnRanges: [Range<Int>]) throws -> Tensor {
    let e = try entry(name, dtypes: [.f32])
    try check(name, e, expectedShape)
    let (rowRange, _) = try sliceGeometry(name, e, rows: nil)
    return try floatBlock(name, e, rows: rowRange, columnRanges: columnRanges, requireFinite: false)
  }

  /// Reads the integer tensor `name` (I32, or I64 if every value fits in Int32).
  ///
  /// - Parameter expected: if given, the tensor's shape must equal it.
  public func int32(_ name: String, shape expected: [Int]? = nil) throws -> IntTensor {
    let e = try entry(name, dtypes: [.i32, .i64])
    if let expected { try check(name, e, expected) }
    let src = base + dataStart + e.begin
    var values = [Int32](repeating: 0, count: e.count)
    if e.dtype == .i32 {
      values.withUnsafeMutableBytes { dst in
        if let d = dst.baseAddress { d.copyMemory(from: src, byteCount: e.count * 4) }
      }
      #if _endian(big)
      for i in values.indices { values[i] = Int32(littleEndian: values[i]) }
      #endif
    } else {
      for i in 0..<e.count {
        let v = Int64(littleEndian: src.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
        guard let narrow = Int32(exactly: v) else {
          throw AttnaxError.tensor(
            name: Escaping.shown(name), message: "I64 value \(v) at flat index \(i) in file '\(path)' does not fit in int32")
        }
        values[i] = narrow
      }
    }
    return IntTensor(shape: e.shape, data: values)
  }

  /// Reads the boolean mask `name` (U8 or BOOL); every value must be 0 or 1.
  ///
  /// - Parameter expected: if given, the tensor's shape must equal it.
  public func mask(_ name: String, shape expected: [Int]? = nil) throws -> MaskTensor {
    let e = try entry(name, dtypes: [.u8, .bool])
    if let expected { try check(name, e, expected) }
    let src = (base + dataStart + e.begin).assumingMemoryBound(to: UInt8.self)
    let values = Array(UnsafeBufferPointer(start: src, count: e.count))
    if let i = values.firstIndex(where: { $0 > 1 }) {
      throw AttnaxError.tensor(
        name: Escaping.shown(name),
        message: "mask value \(values[i]) at flat index \(i) in file '\(path)'; masks hold only 0 or 1")
    }
    return MaskTensor(shape: e.shape, data: values)
  }

  // MARK: Helpers

  private func entry(_ name: String, dtypes: [SafetensorsDType]) throws -> Entry {
    guard let e = entries[name] else {
      throw AttnaxError.tensor(name: Escaping.shown(name), message: "not found in file '\(path)'")
    }
    guard dtypes.contains(e.dtype) else {
      let want = dtypes.map(\.rawValue).joined(separator: " or ")
      throw AttnaxError.tensor(
        name: Escaping.shown(name), message: "has dtype \(e.dtype.rawValue) in file '\(path)', expected \(want)")
    }
    return e
  }

  private func check(_ name: String, _ e: Entry, _ expected: [Int]) throws {
    guard e.shape == expected else {
      throw AttnaxError.tensor(
        name: Escaping.shown(name), message: "has shape \(e.shape) in file '\(path)', expected \(expected)")
    }
  }

  /// Row range for slicing: all rows of a 2-D tensor, the single "row" of a 1-D one.
  private func sliceGeometry(_ name: String, _ e: Entry, rows: Range<Int>?) throws -> (Range<Int>, Int) {
    switch e.shape.count {
    case 2:
      let r = rows ?? 0..<e.shape[0]
      guard r.lowerBound >= 0, r.upperBound <= e.shape[0] else {
        throw AttnaxError.tensor(
          name: Escaping.shown(name), message: "rows \(r) are out of range for shape \(e.shape) in file '\(path)'")
      }
      return (r, e.shape[1])
    case 1:
      if let rows {
        throw AttnaxError.tensor(
          name: Escaping.shown(name), message: "rows \(rows) requested from a 1-D tensor of shape \(e.shape) in file '\(path)'")
      }
      return (0..<1, e.shape[0])
    default:
      throw AttnaxError.tensor(
        name: Escaping.shown(name), message: "slicing needs a 1-D or 2-D tensor, got shape \(e.shape) in file '\(path)'")
    }
  }

  /// `n` F16 or BF16 values (little-endian bit patterns) as float32 at `dst`.
  static func widen(_ halves: [UInt16], _ n: Int, bf16: Bool, into dst: UnsafeMutablePointer<Float>) {
    halves.withUnsafeBufferPointer { h in
      if bf16 {
        for i in 0..<n { dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: h[i])) << 16) }
      } else {
        for i in 0..<n { dst[i] = Float(Float16(bitPattern: UInt16(littleEndian: h[i]))) }
      }
    }
  }

  /// Floats copied (and checked) per read: 256 KiB, so a chunk is still in cache when it is
  /// checked and a whole-tensor read is one pass over memory.
  static let chunkFloats = 1 << 16

  /// Copies `rows` x (concatenated `columnRanges`) of an F32 tensor viewed as (rows, columns);
  /// a 1-D tensor is one row, a tensor of other rank (whole reads only) is one row of all elements.
  /// With `requireFinite`, each chunk is checked right after it is read; the first NaN or
  /// infinity stops the read.
  private func floatBlock(
    _ name: String, _ e: Entry, rows: Range<Int>, columnRanges: [Range<Int>]?, requireFinite: Bool
  ) throws -> Tensor {
    let width = e.shape.count == 2 ? e.shape[1] : e.count
    let ranges = columnRanges ?? [0..<width]
    for c in ranges where c.lowerBound < 0 || c.upperBound > width {
      throw AttnaxError.tensor(
        name: Escaping.shown(name), message: "columns \(c) are out of range for shape \(e.shape) in file '\(path)'")
    }
    let outWidth = ranges.reduce(0) { $0 + $1.count }
    let total = rows.count * outWidth
    var short = false
    var bad: (index: Int, value: Float)?
    let data = [Float](unsafeUninitializedCapacity: total) { buf, initialized in
      if let dst = buf.baseAddress, total > 0 {
        // `count` elements from flat index `from` of the tensor into dst + o, chunk by chunk.
        // F16 / BF16: read into `halves`, then widened into the chunk.
        var halves = [UInt16](repeating: 0, count: e.dtype == .f32 ? 0 : min(Self.chunkFloats, total))
        func copy(to o: Int, from: Int, count: Int) {
          var done = 0
          while done < count && !short && bad == nil {
            let n = min(Self.chunkFloats, count - done), chunk = dst + o + done
            if e.dtype == .f32 {
              guard readData(into: chunk, offset: e.begin + (from + done) * 4, count: n * 4) else {
                short = true
                return
              }
              #if _endian(big)
              for i in 0..<n { chunk[i] = Float(bitPattern: UInt32(littleEndian: chunk[i].bitPattern)) }
              #endif
            } else {
              let read = halves.withUnsafeMutableBytes {
                readData(into: $0.baseAddress!, offset: e.begin + (from + done) * 2, count: n * 2)
              }
              guard read else {
                short = true
                return
              }
              Self.widen(halves, n, bf16: e.dtype == .bf16, into: chunk)
            }
            if requireFinite, let i = Tensor.firstNonFinite(chunk, n) { bad = (from + done + i, chunk[i]) }
            done += n
          }
        }
        if ranges.count == 1, ranges[0] == 0..<width {
          copy(to: 0, from: rows.lowerBound * width, count: total)  // whole rows: contiguous
        } else {
          var o = 0
          for r in rows {
            for c in ranges where !c.isEmpty {
              copy(to: o, from: r * width + c.lowerBound, count: c.count)
              o += c.count
            }
          }
        }
        if short || bad != nil { dst.initialize(repeating: 0, count: total) }
      }
      initialized = total
    }
    if short {
      throw AttnaxError.file(
        path: path, message: "ended while reading tensor '\(Escaping.shown(name))' (file changed after opening?)")
    }
    if let bad {
      let value = bad.value.isNaN ? "nan" : "\(bad.value)"
      throw AttnaxError.tensor(
        name: Escaping.shown(name),
        message: "element \(bad.index) is \(value) in file '\(path)'; weights must be finite")
    }
    let shape: [Int]
    if columnRanges == nil && rows.count == (e.shape.count == 2 ? e.shape[0] : 1) {
      shape = e.shape
    } else {
      shape = e.shape.count == 2 ? [rows.count, outWidth] : [outWidth]
    }
    return Tensor(shape: shape, data: data)
  }

  static func errnoText() -> String { MappedFile.errnoText() }

}
