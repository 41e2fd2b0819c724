#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension SafetensorsFile {
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
            throw bad("'__metadata__' value for key '\(Escaping.shown(k))' is not a string")
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
      .sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
    if spans.count > 1 {
      for i in 1..<spans.count where spans[i].begin < spans[i - 1].end {
        let (a, b) = (spans[i - 1], spans[i])
        throw AttnaxError.tensor(
          name: Escaping.shown(b.name),
          message:
            "data_offsets [\(b.begin), \(b.end)] overlap those of '\(Escaping.shown(a.name))' [\(a.begin), \(a.end)] in file '\(path)'"
        )
      }
    }
    return Parsed(
      names: entries.keys.sorted(), metadata: metadata, headerBytes: Array(header),
      entries: entries, dataStart: dataStart)
  }

  private static func parseEntry(_ name: String, _ value: JSONValue, dataSize: Int, path: String) throws -> Entry {
    func bad(_ m: String) -> AttnaxError { .tensor(name: Escaping.shown(name), message: "\(m) in the header of file '\(path)'") }
    guard case let .object(fields) = value else { throw bad("entry is not a JSON object") }
    var dtypeValue: JSONValue?, shapeValue: JSONValue?, offsetsValue: JSONValue?
    for (k, v) in fields {
      switch k {
      case "dtype": dtypeValue = v
      case "shape": shapeValue = v
      case "data_offsets": offsetsValue = v
      default: throw bad("entry has unknown field '\(Escaping.shown(k))'")
      }
    }
    guard let dtypeValue else { throw bad("entry has no 'dtype'") }
    guard let shapeValue else { throw bad("entry has no 'shape'") }
    guard let offsetsValue else { throw bad("entry has no 'data_offsets'") }

    guard case let .string(dtypeName) = dtypeValue else { throw bad("'dtype' is not a string") }
    guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
      throw bad("unknown dtype '\(Escaping.shown(dtypeName))'")
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
      throw bad(
        "\(dtype.rawValue) shape \(shape) needs \(o ? "too many" : String(bytes)) bytes but 'data_offsets' [\(begin), \(end)] span \(end - begin)"
      )
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
