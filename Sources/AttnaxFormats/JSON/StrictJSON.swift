// MARK: - Strict JSON: the one parser of every JSON the package reads

/// A parsed JSON value. Objects keep their members in file order (chat messages rendered with
/// `tojson` keep their key order, as Python's `json` does); numbers written without a fraction or
/// exponent that fit in 64 bits are `.int`, every other number `.double`.
public enum JSONValue: Sendable, Equatable {
  /// `null`.
  case null
  /// `true` or `false`.
  case bool(Bool)
  /// An integer literal that fits in 64 bits.
  case int(Int64)
  /// Any other number (finite).
  case double(Double)
  /// A string (valid UTF-8, escapes resolved).
  case string(String)
  /// A list.
  case array([JSONValue])
  /// An object, members in file order, keys unique.
  case object([(key: String, value: JSONValue)])

  /// Structural equality (objects compare members in order).
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

  /// The member named `key` of an object; nil for other values.
  public subscript(key: String) -> JSONValue? {
    guard case let .object(members) = self else { return nil }
    return members.first(where: { $0.key == key })?.value
  }

  /// The value as an `Int` if it is a non-negative integer that fits.
  public var nonNegativeInt: Int? {
    guard case let .int(v) = self, v >= 0, let i = Int(exactly: v) else { return nil }
    return i
  }

  /// What kind of value this is, for error messages ("a number", "a list", ...).
  public var kindName: String {
    switch self {
    case .null: return "null"
    case .bool: return "a boolean"
    case .int, .double: return "a number"
    case .string: return "a string"
    case .array: return "a list"
    case .object: return "an object"
    }
  }

  /// A short description for error messages.
  public var brief: String {
    switch self {
    case .object: return "an object"
    case .array: return "a list"
    case let .string(s): return "\"\(Escaping.shown(s))\""
    case let .int(v): return "\(v)"
    case let .double(d): return "\(d)"
    case let .bool(b): return b ? "true" : "false"
    case .null: return "null"
    }
  }

  /// Compact JSON text of the value, object keys in file order or sorted, e.g. for messages
  /// naming values.
  public func jsonText(sortedKeys: Bool = false) -> String {
    switch self {
    case .null: return "null"
    case let .bool(b): return b ? "true" : "false"
    case let .int(v): return "\(v)"
    case let .double(d): return "\(d)"
    case let .string(s): return Escaping.jsonQuoted(s)
    case let .array(items): return "[" + items.map { $0.jsonText(sortedKeys: sortedKeys) }.joined(separator: ",") + "]"
    case let .object(members):
      let ordered = sortedKeys ? members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) } : members
      return "{"
        + ordered.map { Escaping.jsonQuoted($0.key) + ":" + $0.value.jsonText(sortedKeys: sortedKeys) }.joined(separator: ",")
        + "}"
    }
  }

  /// Parses one JSON document under the package's policy: strict RFC 8259 (no trailing commas,
  /// no duplicate keys, valid UTF-8 in strings, finite numbers), nesting bounded at
  /// ``JSONParser/maxDepth`` levels.
  /// - Throws: ``JSONParseError`` with the byte offset, line and column of the fault.
  public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONValue {
    var parser = JSONParser(bytes: bytes)
    return try parser.parseDocument()
  }

  /// ``parse(_:)`` of an array of bytes.
  public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
    try bytes.withUnsafeBytes { try parse($0) }
  }
}

/// Where and why a JSON document is not valid.
public struct JSONParseError: Error, Sendable, Equatable {
  /// What is wrong.
  public var message: String
  /// The byte offset of the fault.
  public var offset: Int
  /// Its line (from 1) and column (from 1, in characters).
  public var line: Int
  /// See ``line``.
  public var column: Int
}

/// A small strict RFC 8259 parser over bytes (see ``JSONValue/parse(_:)-(UnsafeRawBufferPointer)``).
struct JSONParser {
  let b: UnsafeRawBufferPointer
  var i = 0
  var depth = 0
  /// Deepest nesting accepted.
  static let maxDepth = 64

  init(bytes: UnsafeRawBufferPointer) { b = bytes }

  mutating func parseDocument() throws -> JSONValue {
    skipSpace()
    let v = try value()
    skipSpace()
    guard i == b.count else { throw fail("unexpected data after the JSON value") }
    return v
  }

  private func fail(_ m: String, at offset: Int? = nil) -> JSONParseError {
    let at = min(offset ?? i, b.count)
    var line = 1, column = 1
    for k in 0..<at {
      if b[k] == 0x0A { line += 1; column = 1 } else if b[k] & 0xC0 != 0x80 { column += 1 }
    }
    return JSONParseError(message: m, offset: at, line: line, column: column)
  }

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
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
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
    var members: [(key: String, value: JSONValue)] = []
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
        throw fail("duplicate key '\(Escaping.shown(key))'", at: keyOffset)
      }
      skipSpace()
      guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
      i += 1
      skipSpace()
      members.append((key: key, value: try value()))
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

  private mutating func number() throws -> JSONValue {
    let start = i
    var integral = true
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
      integral = false
      guard i < b.count, isDigit(b[i]) else { throw fail("invalid number") }
      while i < b.count, isDigit(b[i]) { i += 1 }
    }
    if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
      i += 1
      integral = false
      if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
      guard i < b.count, isDigit(b[i]) else { throw fail("invalid number") }
      while i < b.count, isDigit(b[i]) { i += 1 }
    }
    let text = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
    if integral, let v = Int64(text) { return .int(v) }
    guard let d = Double(text), d.isFinite else { throw fail("number out of range", at: start) }
    return .double(d)
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
