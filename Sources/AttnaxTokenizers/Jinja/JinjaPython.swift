/// Python's semantics for template values: `str()`, `repr()`, `json.dumps`, `==` and `<`.
/// Byte-identical output to Jinja2 depends on these.
enum Python {
  /// `str(value)` as Jinja prints it (`Undefined` prints as nothing).
  static func str(_ v: JinjaValue, namespaces: [JinjaObject] = []) -> String {
    switch v {
    case .undefined: return ""
    case let .string(s): return s
    default: return repr(v, namespaces: namespaces)
    }
  }

  /// `repr(value)`.
  static func repr(_ v: JinjaValue, namespaces: [JinjaObject] = []) -> String {
    switch v {
    case .undefined: return "Undefined"
    case .none: return "None"
    case let .bool(b): return b ? "True" : "False"
    case let .int(i): return String(i)
    case let .double(d): return float(d)
    case let .string(s): return reprString(s)
    case let .array(a): return "[" + a.map { repr($0, namespaces: namespaces) }.joined(separator: ", ") + "]"
    case let .tuple(a):
      let inner = a.map { repr($0, namespaces: namespaces) }.joined(separator: ", ")
      return "(" + inner + (a.count == 1 ? ",)" : ")")
    case let .object(o):
      return "{" + o.items.map { "\(reprString($0.0)): \(repr($0.1, namespaces: namespaces))" }.joined(separator: ", ") + "}"
    case let .namespace(k):
      let o = k < namespaces.count ? namespaces[k] : JinjaObject()
      return "<Namespace " + repr(.object(o), namespaces: namespaces) + ">"
    case .macro: return "<Macro>"
    case let .builtin(name): return "<built-in function \(name)>"
    }
  }

  /// Python's `repr(float)`: the shortest text that reads back, `.0` on whole numbers.
  static func float(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    var s = d.description  // shortest round-trip, e.g. "1.0", "0.1", "1e-05", "1e+16"
    if let e = s.firstIndex(of: "e") {
      // Python writes at least two exponent digits: 1e-05, 1e+16.
      var mantissa = String(s[..<e])
      if mantissa.hasSuffix(".0") { mantissa.removeLast(2) }
      var exponent = String(s[s.index(after: e)...])
      var sign = "+"
      if exponent.hasPrefix("-") || exponent.hasPrefix("+") {
        sign = exponent.hasPrefix("-") ? "-" : "+"
        exponent.removeFirst()
      }
      if exponent.count < 2 { exponent = "0" + exponent }
      s = mantissa + "e" + sign + exponent
    }
    return s
  }

  static func reprString(_ s: String) -> String {
    let useDouble = s.contains("'") && !s.contains("\"")
    let quote: Unicode.Scalar = useDouble ? "\"" : "'"
    var out = String.UnicodeScalarView()
    out.append(quote)
    for c in s.unicodeScalars {
      switch c {
      case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
      case "\n": out.append(contentsOf: "\\n".unicodeScalars)
      case "\r": out.append(contentsOf: "\\r".unicodeScalars)
      case "\t": out.append(contentsOf: "\\t".unicodeScalars)
      default:
        if c == quote {
          out.append("\\")
          out.append(c)
        } else if isPrintable(c) {
          out.append(c)
        } else {
          let hex = String(c.value, radix: 16)
          let escaped: String
          if c.value < 0x100 {
            escaped = "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
          } else if c.value < 0x10000 {
            escaped = "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
          } else {
            escaped = "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
          }
          out.append(contentsOf: escaped.unicodeScalars)
        }
      }
    }
    out.append(quote)
    return String(out)
  }

  /// Python's `str.isprintable` for one character.
  static func isPrintable(_ c: Unicode.Scalar) -> Bool {
    if c == " " { return true }
    switch c.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
      return false
    default: return true
    }
  }

  /// `json.dumps(value, ensure_ascii=False, indent=indent, separators=..., sort_keys=...)`
  /// (Hugging Face's `tojson`).
  static func json(_ v: JinjaValue, indent: Int?, sortKeys: Bool, namespaces: [JinjaObject], level: Int = 0) throws -> String {
    let itemSeparator = indent == nil ? ", " : ","
    func newline(_ l: Int) -> String { indent.map { "\n" + String(repeating: " ", count: $0 * l) } ?? "" }
    switch v {
    case .none: return "null"
    case let .bool(b): return b ? "true" : "false"
    case let .int(i): return String(i)
    case let .double(d):
      if d.isNaN { return "NaN" }
      if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
      return float(d)
    case let .string(s): return jsonString(s)
    case let .array(a), let .tuple(a):
      if a.isEmpty { return "[]" }
      let items = try a.map {
        newline(level + 1) + (try json($0, indent: indent, sortKeys: sortKeys, namespaces: namespaces, level: level + 1))
      }
      return "[" + items.joined(separator: itemSeparator) + newline(level) + "]"
    case let .object(o):
      if o.isEmpty { return "{}" }
      var pairs = o.items
      if sortKeys { pairs.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) } }
      let items = try pairs.map {
        newline(level + 1) + jsonString($0.0) + ": "
          + (try json($0.1, indent: indent, sortKeys: sortKeys, namespaces: namespaces, level: level + 1))
      }
      return "{" + items.joined(separator: itemSeparator) + newline(level) + "}"
    case .undefined, .namespace, .macro, .builtin:
      throw PythonError("Object of type \(v.typeName) is not JSON serializable")
    }
  }

  static func jsonString(_ s: String) -> String {
    var out = String.UnicodeScalarView()
    out.append("\"")
    for c in s.unicodeScalars {
      switch c {
      case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
      case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
      case "\n": out.append(contentsOf: "\\n".unicodeScalars)
      case "\r": out.append(contentsOf: "\\r".unicodeScalars)
      case "\t": out.append(contentsOf: "\\t".unicodeScalars)
      case "\u{08}": out.append(contentsOf: "\\b".unicodeScalars)
      case "\u{0C}": out.append(contentsOf: "\\f".unicodeScalars)
      default:
        if c.value < 0x20 {
          let hex = String(c.value, radix: 16)
          out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
        } else {
          out.append(c)
        }
      }
    }
    out.append("\"")
    return String(out)
  }

  /// Python's `==`.
  static func equal(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
    switch (a, b) {
    case (.undefined, .undefined), (.none, .none): return true
    case let (.string(x), .string(y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
    case let (.array(x), .array(y)), let (.tuple(x), .tuple(y)):
      return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
    case let (.object(x), .object(y)):
      return x.count == y.count && x.items.allSatisfy { k, v in y[k].map { equal(v, $0) } ?? false }
    case let (.namespace(x), .namespace(y)): return x == y
    case let (.macro(x), .macro(y)): return x == y
    default:
      if let x = a.number, let y = b.number { return x == y }
      return false
    }
  }

  /// Python's `<`; nil when the types do not compare.
  static func less(_ a: JinjaValue, _ b: JinjaValue) -> Bool? {
    switch (a, b) {
    case let (.string(x), .string(y)): return x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars)
    case let (.array(x), .array(y)), let (.tuple(x), .tuple(y)):
      for (u, v) in zip(x, y) where !equal(u, v) { return less(u, v) }
      return x.count < y.count
    default:
      if case .undefined = a { return nil }
      if case .undefined = b { return nil }
      if let x = a.number, let y = b.number { return x < y }
      return nil
    }
  }

  // MARK: - str methods

  static func strip(_ s: String, chars: String?, left: Bool, right: Bool) -> String {
    let set = chars.map { Set($0.unicodeScalars) }
    func drop(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? CharClass.isPythonSpace(c) }
    var u = s.unicodeScalars[...]
    if left { u = u.drop(while: drop) }
    if right { while let last = u.last, drop(last) { u = u.dropLast() } }
    return String(String.UnicodeScalarView(u))
  }

  /// `str.split(sep, maxsplit)`.
  static func split(_ s: String, separator: String?, maxSplit: Int) -> [String] {
    let u = Array(s.unicodeScalars)
    var parts: [String] = []
    guard let separator else {
      var i = 0
      var splits = 0
      while i < u.count {
        while i < u.count, CharClass.isPythonSpace(u[i]) { i += 1 }
        if i >= u.count { break }
        if maxSplit >= 0, splits >= maxSplit {
          var rest = Array(u[i...])
          while let last = rest.last, CharClass.isPythonSpace(last) { rest.removeLast() }
          parts.append(String(String.UnicodeScalarView(rest)))
          break
        }
        let start = i
        while i < u.count, !CharClass.isPythonSpace(u[i]) { i += 1 }
        parts.append(String(String.UnicodeScalarView(u[start..<i])))
        splits += 1
      }
      return parts
    }
    let sep = Array(separator.unicodeScalars)
    var start = 0
    var i = 0
    var splits = 0
    while i + sep.count <= u.count, !sep.isEmpty {
      if (maxSplit < 0 || splits < maxSplit), u[i..<(i + sep.count)].elementsEqual(sep) {
        parts.append(String(String.UnicodeScalarView(u[start..<i])))
        i += sep.count
        start = i
        splits += 1
      } else {
        i += 1
      }
    }
    parts.append(String(String.UnicodeScalarView(u[start...])))
    return parts
  }

  /// `str.lower()`: full lowercase mappings, with the final-sigma rule (Σ at the end of a
  /// word becomes ς).
  static func lower(_ s: String) -> String {
    let u = Array(s.unicodeScalars)
    var out = String.UnicodeScalarView()
    for (i, c) in u.enumerated() {
      if c == "\u{03A3}" {
        var before = i - 1
        while before >= 0, u[before].properties.isCaseIgnorable { before -= 1 }
        var after = i + 1
        while after < u.count, u[after].properties.isCaseIgnorable { after += 1 }
        let final = before >= 0 && u[before].properties.isCased && !(after < u.count && u[after].properties.isCased)
        out.append(final ? "\u{03C2}" : "\u{03C3}")
      } else {
        out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
      }
    }
    return String(out)
  }

  /// `str.upper()`: full uppercase mappings (ß → SS).
  static func upper(_ s: String) -> String {
    var out = String.UnicodeScalarView()
    for c in s.unicodeScalars { out.append(contentsOf: c.properties.uppercaseMapping.unicodeScalars) }
    return String(out)
  }

  /// `str.capitalize()`: the first character titlecased, the rest lowercased.
  static func capitalize(_ s: String) -> String {
    guard let first = s.unicodeScalars.first else { return s }
    return first.properties.titlecaseMapping + lower(String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())))
  }

  /// `str.title()`: titlecase after a non-cased character, lowercase after a cased one.
  static func title(_ s: String) -> String {
    var out = ""
    var previousCased = false
    for c in s.unicodeScalars {
      out += previousCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping
      previousCased = c.properties.isCased
    }
    return out
  }
}

/// A Python-level error in a template operation (becomes `ChatTemplateError.runtime`).
struct PythonError: Error {
  var message: String
  init(_ message: String) { self.message = message }
}
