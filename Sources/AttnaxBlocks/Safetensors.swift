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
/// its shard with ``floatSlice(_:expectedShape:rows:columns:)`` faults in only the pages it needs.
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
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw AttnaxError.file(path: path, message: "cannot be opened: \(Self.errnoText())") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw AttnaxError.file(path: path, message: "cannot be inspected: \(Self.errnoText())") }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
      throw AttnaxError.file(path: path, message: "is not a regular file")
    }
    let size = Int(st.st_size)
    guard size >= 8 else {
      throw AttnaxError.file(path: path, message: "is \(size) bytes long, too short for a safetensors header (8-byte length + JSON)")
    }
    guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
      throw AttnaxError.file(path: path, message: "cannot be memory-mapped: \(Self.errnoText())")
    }
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
  /// - Parameter expected: if given, the tensor's shape must equal it.
  /// - Throws: ``AttnaxError/tensor(name:message:)`` if the tensor is missing, not F32, or has
  ///   another shape (the message gives both shapes).
  public func float(_ name: String, shape expected: [Int]? = nil) throws -> Tensor {
    let e = try entry(name, dtypes: [.f32])
    if let expected { try check(name, e, expected) }
    return try floatBlock(name, e, rows: 0..<(e.shape.count == 2 ? e.shape[0] : 1), columnRanges: nil)
  }

  /// Reads a rectangular part of a 2-D F32 tensor, or a range of elements of a 1-D one.
  ///
  /// Only the selected bytes are copied out of the mapping. Tensor-parallel loading uses this:
  /// a column-parallel kernel `(in, out)` takes a column range, a row-parallel kernel a row
  /// range, and a column-parallel bias `(out,)` takes `columns` of the 1-D tensor.
  ///
  /// - Parameters:
  ///   - expectedShape: the full tensor's shape, which must match the file.
  ///   - rows: rows to keep (2-D only); `nil` keeps all.
  ///   - columns: columns (2-D) or elements (1-D) to keep; `nil` keeps all.
  /// - Returns: a tensor of shape `(rows.count, columns.count)` for 2-D, `(columns.count)` for 1-D.
  public func floatSlice(
    _ name: String, expectedShape: [Int], rows: Range<Int>? = nil, columns: Range<Int>? = nil
  ) throws -> Tensor {
    let e = try entry(name, dtypes: [.f32])
    try check(name, e, expectedShape)
    let (rowRange, _) = try sliceGeometry(name, e, rows: rows)
    return try floatBlock(name, e, rows: rowRange, columnRanges: columns.map { [$0] })
  }

  /// Reads several column ranges of a 2-D F32 tensor (or element ranges of a 1-D one) and
  /// concatenates them along the last axis, in the order given.
  ///
  /// - Returns: shape `(rows, sum of range lengths)` for 2-D, `(sum of range lengths)` for 1-D.
  public func floatColumns(_ name: String, expectedShape: [Int], columnRanges: [Range<Int>]) throws -> Tensor {
    let e = try entry(name, dtypes: [.f32])
    try check(name, e, expectedShape)
    let (rowRange, _) = try sliceGeometry(name, e, rows: nil)
    return try floatBlock(name, e, rows: rowRange, columnRanges: columnRanges)
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
            name: shown(name), message: "I64 value \(v) at flat index \(i) in file '\(path)' does not fit in int32")
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
        name: shown(name), message: "mask value \(values[i]) at flat index \(i) in file '\(path)'; masks hold only 0 or 1")
    }
    return MaskTensor(shape: e.shape, data: values)
  }

  // MARK: Helpers

  private func entry(_ name: String, dtypes: [SafetensorsDType]) throws -> Entry {
    guard let e = entries[name] else {
      throw AttnaxError.tensor(name: shown(name), message: "not found in file '\(path)'")
    }
    guard dtypes.contains(e.dtype) else {
      let want = dtypes.map(\.rawValue).joined(separator: " or ")
      throw AttnaxError.tensor(
        name: shown(name), message: "has dtype \(e.dtype.rawValue) in file '\(path)', expected \(want)")
    }
    return e
  }

  private func check(_ name: String, _ e: Entry, _ expected: [Int]) throws {
    guard e.shape == expected else {
      throw AttnaxError.tensor(
        name: shown(name), message: "has shape \(e.shape) in file '\(path)', expected \(expected)")
    }
  }

  /// Row range for slicing: all rows of a 2-D tensor, the single "row" of a 1-D one.
  private func sliceGeometry(_ name: String, _ e: Entry, rows: Range<Int>?) throws -> (Range<Int>, Int) {
    switch e.shape.count {
    case 2:
      let r = rows ?? 0..<e.shape[0]
      guard r.lowerBound >= 0, r.upperBound <= e.shape[0] else {
        throw AttnaxError.tensor(
          name: shown(name), message: "rows \(r) are out of range for shape \(e.shape) in file '\(path)'")
      }
      return (r, e.shape[1])
    case 1:
      if let rows {
        throw AttnaxError.tensor(
          name: shown(name), message: "rows \(rows) requested from a 1-D tensor of shape \(e.shape) in file '\(path)'")
      }
      return (0..<1, e.shape[0])
    default:
      throw AttnaxError.tensor(
        name: shown(name), message: "slicing needs a 1-D or 2-D tensor, got shape \(e.shape) in file '\(path)'")
    }
  }

  /// Copies `rows` x (concatenated `columnRanges`) of an F32 tensor viewed as (rows, columns);
  /// a 1-D tensor is one row, a tensor of other rank (whole reads only) is one row of all elements.
  private func floatBlock(_ name: String, _ e: Entry, rows: Range<Int>, columnRanges: [Range<Int>]?) throws -> Tensor {
    let width = e.shape.count == 2 ? e.shape[1] : e.count
    let ranges = columnRanges ?? [0..<width]
    for c in ranges where c.lowerBound < 0 || c.upperBound > width {
      throw AttnaxError.tensor(
        name: shown(name), message: "columns \(c) are out of range for shape \(e.shape) in file '\(path)'")
    }
    let outWidth = ranges.reduce(0) { $0 + $1.count }
    let total = rows.count * outWidth
    var short = false
    let data = [Float](unsafeUninitializedCapacity: total) { buf, initialized in
      if let dst = buf.baseAddress, total > 0 {
        if ranges.count == 1, ranges[0] == 0..<width {
          // Whole rows: one contiguous read.
          short = !readData(into: dst, offset: e.begin + rows.lowerBound * width * 4, count: total * 4)
        } else {
          var o = 0
          for r in rows {
            for c in ranges where !c.isEmpty {
              if !readData(into: dst + o, offset: e.begin + (r * width + c.lowerBound) * 4, count: c.count * 4) { short = true }
              o += c.count
            }
          }
        }
        if short { dst.initialize(repeating: 0, count: total) }
        #if _endian(big)
        for i in 0..<total { dst[i] = Float(bitPattern: UInt32(littleEndian: dst[i].bitPattern)) }
        #endif
      }
      initialized = total
    }
    if short { throw AttnaxError.file(path: path, message: "ended while reading tensor '\(shown(name))' (file changed after opening?)") }
    let shape: [Int]
    if columnRanges == nil && rows.count == (e.shape.count == 2 ? e.shape[0] : 1) {
      shape = e.shape
    } else {
      shape = e.shape.count == 2 ? [rows.count, outWidth] : [outWidth]
    }
    return Tensor(shape: shape, data: data)
  }

  static func errnoText() -> String { String(cString: strerror(errno)) }

  // MARK: Header validation

  struct Parsed {
    var names: [String]
    var metadata: [String: String]
    var headerBytes: [UInt8]
    var entries: [String: Entry]
    var dataStart: Int
  }

  /// The largest header accepted, as in the reference implementation.
  static let maxHeaderBytes: UInt64 = 100_000_000

  static func parse(_ file: UnsafeRawBufferPointer, path: String) throws -> Parsed {
    func bad(_ m: String) -> AttnaxError { .file(path: path, message: m) }
    let size = file.count
    guard size >= 8 else {
      throw bad("is \(size) bytes long, too short for a safetensors header (8-byte length + JSON)")
    }
    var n: UInt64 = 0
    for i in 0..<8 { n |= UInt64(file[i]) << (8 * UInt64(i)) }
    guard n < maxHeaderBytes else {
      throw bad("header length \(n) is not below the limit of \(maxHeaderBytes) bytes")
    }
    guard n <= UInt64(size - 8) else {
      throw bad("header length \(n) runs past the end of the file (\(size) bytes)")
    }
    let headerLength = Int(n)
    let header = UnsafeRawBufferPointer(rebasing: file[8..<(8 + headerLength)])
    let dataStart = 8 + headerLength
    let dataSize = size - dataStart

    let root: JSONValue
    do {
      var parser = JSONParser(bytes: header)
      root = try parser.parseDocument()
    } catch let e as JSONParseError {
      throw bad("header is not valid JSON: \(e.message) at header byte \(e.offset)")
    }
    guard case let .object(members) = root else {
      throw bad("header is not a JSON object")
    }

    var metadata: [String: String] = [:]
    var entries: [String: Entry] = [:]
    for (key, value) in members {
      if key == "__metadata__" {
        guard case let .object(pairs) = value else { throw bad("'__metadata__' is not a JSON object") }
        for (k, v) in pairs {
          guard case let .string(s) = v else {
            throw bad("'__metadata__' value for key '\(shown(k))' is not a string")
          }
          metadata[k] = s
        }
        continue
      }
      entries[key] = try parseEntry(key, value, dataSize: dataSize, path: path)
    }

    // No two tensors may share bytes (empty tensors occupy none).
    let spans = entries.filter { $0.value.begin < $0.value.end }
      .map { (name: $0.key, begin: $0.value.begin, end: $0.value.end) }
      .sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
    if spans.count > 1 {
      for i in 1..<spans.count where spans[i].begin < spans[i - 1].end {
        let (a, b) = (spans[i - 1], spans[i])
        throw AttnaxError.tensor(
          name: shown(b.name),
          message: "data_offsets [\(b.begin), \(b.end)] overlap those of '\(shown(a.name))' [\(a.begin), \(a.end)] in file '\(path)'")
      }
    }
    return Parsed(
      names: entries.keys.sorted(), metadata: metadata, headerBytes: Array(header),
      entries: entries, dataStart: dataStart)
  }

  private static func parseEntry(_ name: String, _ value: JSONValue, dataSize: Int, path: String) throws -> Entry {
    func bad(_ m: String) -> AttnaxError { .tensor(name: shown(name), message: "\(m) in the header of file '\(path)'") }
    guard case let .object(fields) = value else { throw bad("entry is not a JSON object") }
    var dtypeValue: JSONValue?, shapeValue: JSONValue?, offsetsValue: JSONValue?
    for (k, v) in fields {
      switch k {
      case "dtype": dtypeValue = v
      case "shape": shapeValue = v
      case "data_offsets": offsetsValue = v
      default: throw bad("entry has unknown field '\(shown(k))'")
      }
    }
    guard let dtypeValue else { throw bad("entry has no 'dtype'") }
    guard let shapeValue else { throw bad("entry has no 'shape'") }
    guard let offsetsValue else { throw bad("entry has no 'data_offsets'") }

    guard case let .string(dtypeName) = dtypeValue else { throw bad("'dtype' is not a string") }
    guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
      throw bad("unknown dtype '\(shown(dtypeName))'")
    }
    guard case let .array(dims) = shapeValue else { throw bad("'shape' is not a list") }
    var shape: [Int] = []
    var count = 1
    for d in dims {
      guard let v = d.nonNegativeInt else { throw bad("'shape' holds \(d.brief), not a non-negative integer") }
      shape.append(v)
      let (p, o) = count.multipliedReportingOverflow(by: v)
      guard !o else { throw bad("'shape' \(dims.map(\.brief)) has too many elements") }
      count = p
    }
    guard case let .array(offs) = offsetsValue, offs.count == 2 else {
      throw bad("'data_offsets' is not a list of two integers")
    }
    guard let begin = offs[0].nonNegativeInt, let end = offs[1].nonNegativeInt else {
      throw bad("'data_offsets' [\(offs[0].brief), \(offs[1].brief)] are not non-negative integers")
    }
    guard begin <= end else { throw bad("'data_offsets' begin \(begin) is after end \(end)") }
    guard end <= dataSize else {
      throw bad("'data_offsets' end \(end) is past the end of the data section (\(dataSize) bytes)")
    }
    let (bytes, o) = count.multipliedReportingOverflow(by: dtype.size)
    guard !o, bytes == end - begin else {
      throw bad("\(dtype.rawValue) shape \(shape) needs \(o ? "too many" : String(bytes)) bytes but 'data_offsets' [\(begin), \(end)] span \(end - begin)")
    }
    return Entry(dtype: dtype, shape: shape, begin: begin, end: end, count: count)
  }
}

/// Element types of the safetensors format (their names as spelled in headers).
enum SafetensorsDType: String, CaseIterable, Sendable {
  case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
  case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
  case i32 = "I32", u32 = "U32", f32 = "F32"
  case i64 = "I64", u64 = "U64", f64 = "F64"

  /// Bytes per element.
  var size: Int {
    switch self {
    case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
    case .i16, .u16, .f16, .bf16: return 2
    case .i32, .u32, .f32: return 4
    case .i64, .u64, .f64: return 8
    }
  }
}

/// A name or key made safe for a one-line error message (control characters escaped, long
/// names shortened).
func shown(_ s: String) -> String {
  var out = ""
  for u in s.unicodeScalars {
    if u.value < 0x20 || u.value == 0x7f {
      out += "\\u{\(String(u.value, radix: 16))}"
    } else {
      out.unicodeScalars.append(u)
    }
  }
  if out.count > 200 { out = String(out.prefix(200)) + "..." }
  return out
}

// MARK: - Strict JSON (the header)

/// A parsed JSON value; objects keep their members in order.
enum JSONValue {
  case object([(String, JSONValue)])
  case array([JSONValue])
  case string(String)
  /// The number's text, as written.
  case number(String)
  case bool(Bool)
  case null

  /// The value as an `Int` if it is a plain non-negative integer literal that fits.
  var nonNegativeInt: Int? {
    guard case let .number(text) = self, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
    return Int(text)
  }

  /// A short description for error messages.
  var brief: String {
    switch self {
    case .object: return "an object"
    case .array: return "a list"
    case let .string(s): return "\"\(shown(s))\""
    case let .number(t): return t.count > 30 ? String(t.prefix(30)) + "..." : t
    case let .bool(b): return b ? "true" : "false"
    case .null: return "null"
    }
  }
}

struct JSONParseError: Error {
  var message: String
  var offset: Int
}

/// A small strict RFC 8259 parser: no trailing commas, no duplicate keys, bounded nesting,
/// strings must be valid UTF-8 (bytes outside strings must be ASCII JSON syntax anyway).
struct JSONParser {
  let b: UnsafeRawBufferPointer
  var i = 0
  var depth = 0
  static let maxDepth = 64

  init(bytes: UnsafeRawBufferPointer) { b = bytes }

  mutating func parseDocument() throws -> JSONValue {
    skipSpace()
    let v = try value()
    skipSpace()
    guard i == b.count else { throw fail("unexpected data after the JSON value") }
    return v
  }

  private func fail(_ m: String) -> JSONParseError { JSONParseError(message: m, offset: i) }

  private mutating func skipSpace() {
    while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
  }

  private mutating func value() throws -> JSONValue {
    guard i < b.count else { throw fail("unexpected end of input") }
    switch b[i] {
    case UInt8(ascii: "{"): return try object()
    case UInt8(ascii: "["): return try array()
    case UInt8(ascii: "\""): return .string(try string())
    case UInt8(ascii: "t"): try literal("true"); return .bool(true)
    case UInt8(ascii: "f"): try literal("false"); return .bool(false)
    case UInt8(ascii: "n"): try literal("null"); return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
    default: throw fail("unexpected character")
    }
  }

  private mutating func enter() throws {
    depth += 1
    guard depth <= Self.maxDepth else { throw fail("nested deeper than \(Self.maxDepth) levels") }
  }

  private mutating func object() throws -> JSONValue {
    try enter()
    i += 1
    var members: [(String, JSONValue)] = []
    var seen = Set<String>()
    skipSpace()
    if i < b.count, b[i] == UInt8(ascii: "}") {
      i += 1; depth -= 1
      return .object(members)
    }
    while true {
      skipSpace()
      guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
      let keyOffset = i
      let key = try string()
      guard seen.insert(key).inserted else {
        throw JSONParseError(message: "duplicate key '\(shown(key))'", offset: keyOffset)
      }
      skipSpace()
      guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
      i += 1
      skipSpace()
      members.append((key, try value()))
      skipSpace()
      guard i < b.count else { throw fail("unexpected end of input") }
      if b[i] == UInt8(ascii: ",") { i += 1; continue }
      if b[i] == UInt8(ascii: "}") { i += 1; break }
      throw fail("expected ',' or '}'")
    }
    depth -= 1
    return .object(members)
  }

  private mutating func array() throws -> JSONValue {
    try enter()
    i += 1
    var items: [JSONValue] = []
    skipSpace()
    if i < b.count, b[i] == UInt8(ascii: "]") {
      i += 1; depth -= 1
      return .array(items)
    }
    while true {
      skipSpace()
      items.append(try value())
      skipSpace()
      guard i < b.count else { throw fail("unexpected end of input") }
      if b[i] == UInt8(ascii: ",") { i += 1; continue }
      if b[i] == UInt8(ascii: "]") { i += 1; break }
      throw fail("expected ',' or ']'")
    }
    depth -= 1
    return .array(items)
  }

  private mutating func literal(_ word: StaticString) throws {
    let n = word.utf8CodeUnitCount
    guard i + n <= b.count else { throw fail("unexpected end of input") }
    for k in 0..<n where b[i + k] != word.utf8Start[k] { throw fail("invalid literal") }
    i += n
  }

  private mutating func number() throws -> String {
    let start = i
    func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    if b[i] == UInt8(ascii: "-") { i += 1 }
    guard i < b.count, isDigit(b[i]) else { throw fail("invalid number") }
    if b[i] == UInt8(ascii: "0") {
      i += 1
    } else {
      while i < b.count, isDigit(b[i]) { i += 1 }
    }
    if i < b.count, b[i] == UInt8(ascii: ".") {
      i += 1
      guard i < b.count, isDigit(b[i]) else { throw fail("invalid number") }
      while i < b.count, isDigit(b[i]) { i += 1 }
    }
    if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
      i += 1
      if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
      guard i < b.count, isDigit(b[i]) else { throw fail("invalid number") }
      while i < b.count, isDigit(b[i]) { i += 1 }
    }
    return String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
  }

  private mutating func hex4() throws -> UInt32 {
    guard i + 4 <= b.count else { throw fail("unexpected end of input in \\u escape") }
    var v: UInt32 = 0
    for _ in 0..<4 {
      let c = b[i]
      let d: UInt32
      switch c {
      case 0x30...0x39: d = UInt32(c - 0x30)
      case 0x41...0x46: d = UInt32(c - 0x41 + 10)
      case 0x61...0x66: d = UInt32(c - 0x61 + 10)
      default: throw fail("invalid \\u escape")
      }
      v = v << 4 | d
      i += 1
    }
    return v
  }

  /// Appends the well-formed UTF-8 sequence starting with lead byte `c` at `i` and moves past it.
  private mutating func utf8Sequence(_ c: UInt8, into out: inout [UInt8]) throws {
    let extra: Int
    switch c {
    case 0xC2...0xDF: extra = 1
    case 0xE0...0xEF: extra = 2
    case 0xF0...0xF4: extra = 3
    default: throw fail("invalid UTF-8")
    }
    guard i + extra < b.count else { throw fail("invalid UTF-8") }
    var v = UInt32(c & (0x3F >> UInt8(extra)))
    for k in 1...extra {
      let cc = b[i + k]
      guard cc & 0xC0 == 0x80 else { throw fail("invalid UTF-8") }
      v = v << 6 | UInt32(cc & 0x3F)
    }
    let smallest: UInt32 = extra == 1 ? 0x80 : extra == 2 ? 0x800 : 0x10000
    guard v >= smallest, v <= 0x10FFFF, !(0xD800...0xDFFF).contains(v) else { throw fail("invalid UTF-8") }
    for k in 0...extra { out.append(b[i + k]) }
    i += extra + 1
  }

  private mutating func string() throws -> String {
    i += 1  // opening quote
    var out: [UInt8] = []
    while true {
      guard i < b.count else { throw fail("unterminated string") }
      let c = b[i]
      if c == UInt8(ascii: "\"") { i += 1; break }
      if c < 0x20 { throw fail("control character in string") }
      if c >= 0x80 { try utf8Sequence(c, into: &out); continue }
      if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
      i += 1
      guard i < b.count else { throw fail("unterminated string") }
      let e = b[i]
      i += 1
      switch e {
      case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0C)
      case UInt8(ascii: "n"): out.append(0x0A)
      case UInt8(ascii: "r"): out.append(0x0D)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "u"):
        var v = try hex4()
        if (0xD800...0xDBFF).contains(v) {
          guard i + 2 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
            throw fail("unpaired surrogate in \\u escape")
          }
          i += 2
          let low = try hex4()
          guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
          v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(v) {
          throw fail("unpaired surrogate in \\u escape")
        }
        guard let scalar = Unicode.Scalar(v) else { throw fail("invalid \\u escape") }
        out.append(contentsOf: UTF8.encode(scalar)!)
      default: throw fail("invalid escape")
      }
    }
    return String(decoding: out, as: UTF8.self)
  }
}
