// MARK: - Strict JSON (safetensors headers and every JSON file the tools read)

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
    case let .string(s): return "\"\(Escaping.shown(s))\""
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
        throw JSONParseError(message: "duplicate key '\(Escaping.shown(key))'", offset: keyOffset)
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
