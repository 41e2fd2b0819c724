/// A parsed JSON value. Objects keep their members in file order (chat messages rendered with
/// `tojson` must keep their key order, as Python's `json` does).
public enum JSONValue: Sendable, Equatable {
  case null
  case bool(Bool)
  /// A number written without a fraction or exponent that fits in 64 bits.
  case int(Int64)
  case double(Double)
  case string(String)
  case array([JSONValue])
  case object([(key: String, value: JSONValue)])

  public static func == (a: JSONValue, b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case let (.bool(x), .bool(y)): return x == y
    case let (.int(x), .int(y)): return x == y
    case let (.double(x), .double(y)): return x == y
    case let (.string(x), .string(y)): return x == y
    case let (.array(x), .array(y)): return x == y
    case let (.object(x), .object(y)):
      return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    default: return false
    }
  }

  /// The member named `key` of an object (the last one if the key repeats); nil otherwise.
  public subscript(key: String) -> JSONValue? {
    guard case let .object(members) = self else { return nil }
    return members.last(where: { $0.key == key })?.value
  }

  /// A short description for error messages.
  var kindName: String {
    switch self {
    case .null: return "null"
    case .bool: return "a boolean"
    case .int, .double: return "a number"
    case .string: return "a string"
    case .array: return "a list"
    case .object: return "an object"
    }
  }

  /// Parses a JSON document (RFC 8259; nesting bounded at 128 levels).
  /// - Throws: `TokenizerError` naming `file`, with the line and column of the fault.
  public static func parse(_ bytes: [UInt8], file: String) throws -> JSONValue {
    var parser = JSONParser(bytes: bytes)
    do {
      parser.skipSpace()
      let value = try parser.value(depth: 0)
      parser.skipSpace()
      guard parser.i == bytes.count else { throw parser.fail("unexpected data after the JSON value") }
      return value
    } catch let e as JSONParser.Failure {
      var line = 1
      var column = 1
      for b in bytes[..<min(e.offset, bytes.count)] {
        if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
      }
      throw TokenizerError(file: file, field: "", message: "invalid JSON at line \(line), column \(column): \(e.message)")
    }
  }
}

/// A byte-level recursive-descent JSON parser.
struct JSONParser {
  struct Failure: Error {
    var message: String
    var offset: Int
  }

  let b: [UInt8]
  var i = 0
  static let maxDepth = 128

  init(bytes: [UInt8]) { b = bytes }

  func fail(_ message: String) -> Failure { Failure(message: message, offset: i) }

  mutating func skipSpace() {
    while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
  }

  mutating func value(depth: Int) throws -> JSONValue {
    guard depth < Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) levels") }
    guard i < b.count else { throw fail("unexpected end of data") }
    switch b[i] {
    case UInt8(ascii: "{"): return try object(depth: depth)
    case UInt8(ascii: "["): return try array(depth: depth)
    case UInt8(ascii: "\""): return .string(try string())
    case UInt8(ascii: "t"): try literal("true"); return .bool(true)
    case UInt8(ascii: "f"): try literal("false"); return .bool(false)
    case UInt8(ascii: "n"): try literal("null"); return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
    default: throw fail("unexpected character")
    }
  }

  private mutating func literal(_ word: StaticString) throws {
    let n = word.utf8CodeUnitCount
    guard i + n <= b.count else { throw fail("unexpected end of data") }
    for k in 0..<n where b[i + k] != word.utf8Start[k] { throw fail("unexpected character") }
    i += n
  }

  private mutating func object(depth: Int) throws -> JSONValue {
    i += 1
    var members: [(key: String, value: JSONValue)] = []
    skipSpace()
    if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
    while true {
      skipSpace()
      guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
      let key = try string()
      skipSpace()
      guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
      i += 1
      skipSpace()
      members.append((key, try value(depth: depth + 1)))
      skipSpace()
      guard i < b.count else { throw fail("unexpected end of data") }
      if b[i] == UInt8(ascii: ",") { i += 1; continue }
      if b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
      throw fail("expected ',' or '}'")
    }
  }

  private mutating func array(depth: Int) throws -> JSONValue {
    i += 1
    var items: [JSONValue] = []
    skipSpace()
    if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
    while true {
      skipSpace()
      items.append(try value(depth: depth + 1))
      skipSpace()
      guard i < b.count else { throw fail("unexpected end of data") }
      if b[i] == UInt8(ascii: ",") { i += 1; continue }
      if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
      throw fail("expected ',' or ']'")
    }
  }

  private mutating func number() throws -> JSONValue {
    let start = i
    if b[i] == UInt8(ascii: "-") { i += 1 }
    func digits(_ p: inout JSONParser) -> Int {
      let s = p.i
      while p.i < p.b.count, p.b[p.i] >= 0x30, p.b[p.i] <= 0x39 { p.i += 1 }
      return p.i - s
    }
    let intStart = i
    guard digits(&self) > 0 else { throw fail("expected a digit") }
    if b[intStart] == UInt8(ascii: "0"), i - intStart > 1 { throw fail("leading zero in a number") }
    var integral = true
    if i < b.count, b[i] == UInt8(ascii: ".") {
      i += 1
      integral = false
      guard digits(&self) > 0 else { throw fail("expected a digit after '.'") }
    }
    if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
      i += 1
      integral = false
      if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
      guard digits(&self) > 0 else { throw fail("expected a digit in the exponent") }
    }
    let text = String(decoding: b[start..<i], as: UTF8.self)
    if integral, let v = Int64(text) { return .int(v) }
    guard let d = Double(text), d.isFinite else { throw fail("number out of range") }
    return .double(d)
  }

  /// A string starting at the opening quote; strings must be valid UTF-8.
  mutating func string() throws -> String {
    i += 1
    let start = i
    // Fast path: no escapes.
    while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\"), b[i] >= 0x20 { i += 1 }
    if i < b.count, b[i] == UInt8(ascii: "\"") {
      guard let s = String(validating: b[start..<i], as: UTF8.self) else { throw fail("string is not valid UTF-8") }
      i += 1
      return s
    }
    var out = Array(b[start..<i])
    while true {
      guard i < b.count else { throw fail("unterminated string") }
      let c = b[i]
      if c == UInt8(ascii: "\"") { i += 1; break }
      if c < 0x20 { throw fail("control character in a string") }
      if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
      i += 1
      guard i < b.count else { throw fail("unterminated string") }
      let e = b[i]
      i += 1
      switch e {
      case UInt8(ascii: "\""): out.append(0x22)
      case UInt8(ascii: "\\"): out.append(0x5C)
      case UInt8(ascii: "/"): out.append(0x2F)
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0C)
      case UInt8(ascii: "n"): out.append(0x0A)
      case UInt8(ascii: "r"): out.append(0x0D)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "u"):
        var code = try hex4()
        if code >= 0xD800, code < 0xDC00 {
          guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
            throw fail("unpaired surrogate escape")
          }
          i += 2
          let low = try hex4()
          guard low >= 0xDC00, low < 0xE000 else { throw fail("unpaired surrogate escape") }
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        } else if code >= 0xDC00, code < 0xE000 {
          throw fail("unpaired surrogate escape")
        }
        guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape") }
        out.append(contentsOf: Array(String(Character(scalar)).utf8))
      default: throw fail("invalid escape")
      }
    }
    guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
    return s
  }

  private mutating func hex4() throws -> UInt32 {
    guard i + 4 <= b.count else { throw fail("unterminated \\u escape") }
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
}
