import Foundation

/// Jinja2's filters (with Hugging Face's `tojson`: `json.dumps(ensure_ascii=False)`).
extension JinjaInterpreter {
  mutating func applyFilter(
    _ name: String, _ v: JinjaValue, args: [JinjaValue], kwargs: [String: JinjaValue], line: Int
  ) throws
    -> JinjaValue
  {
    switch name {
    case "trim":
      let chars = arg(args, kwargs, 0, "chars").flatMap { if case let .string(s) = $0 { return s } else { return nil } }
      return .string(Python.strip(str(v), chars: chars, left: true, right: true))
    case "length", "count":
      switch v {
      case .undefined: return .int(0)
      case let .string(s): return .int(s.unicodeScalars.count)
      case let .array(a), let .tuple(a): return .int(a.count)
      case let .object(o): return .int(o.count)
      default: throw fail(line, "object of type '\(v.typeName)' has no len()")
      }
    case "upper": return .string(Python.upper(str(v)))
    case "lower": return .string(Python.lower(str(v)))
    case "capitalize": return .string(Python.capitalize(str(v)))
    case "title": return .string(Python.title(str(v)))
    case "string": return .string(str(v))
    case "safe": return v
    case "e", "escape":
      var s = str(v)
      for (a, b) in [("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\"", "&#34;"), ("'", "&#39;")] {
        s = s.replacingScalars(a, with: b)
      }
      return .string(s)
    case "default", "d":
      let fallback = arg(args, kwargs, 0, "default_value") ?? .string("")
      let boolean = arg(args, kwargs, 1, "boolean")?.truthy ?? false
      return (v.isUndefined || (boolean && !v.truthy)) ? fallback : v
    case "tojson":
      let indent: Int?
      switch arg(args, kwargs, 0, "indent") {
      case nil, .none?: indent = nil
      case let x?: indent = try int(x, "indent", line: line)
      }
      let sortKeys = kwargs["sort_keys"]?.truthy ?? false
      do {
        return .string(try Python.json(v, indent: indent, sortKeys: sortKeys, namespaces: namespaces))
      } catch let e as PythonError {
        throw fail(line, e.message)
      }
    case "first", "last":
      let items = try iterate(v, line: line)
      guard let x = name == "first" ? items.first : items.last else { return .undefined }
      return x
    case "join":
      let separator = arg(args, kwargs, 0, "d").map(str) ?? ""
      var items = try iterate(v, line: line)
      if let attr = kwargs["attribute"] { items = try items.map { try attribute($0, str(attr), line: line) } }
      return .string(items.map(str).joined(separator: separator))
    case "list": return .array(try iterate(v, line: line))
    case "reverse":
      if case let .string(s) = v { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
      return .array(try iterate(v, line: line).reversed())
    case "replace":
      let old = try string(arg(args, kwargs, 0, "old"), "replace's old", line: line)
      let new = try string(arg(args, kwargs, 1, "new"), "replace's new", line: line)
      let count = try arg(args, kwargs, 2, "count").map { try int($0, "count", line: line) } ?? Int.max
      return .string(str(v).replacingScalars(old, with: new, limit: count))
    case "int":
      switch v {
      case let .int(i): return .int(i)
      case let .double(d): return .int(Int(exactly: d.rounded(.towardZero)) ?? 0)
      case let .bool(b): return .int(b ? 1 : 0)
      case let .string(s):
        let t = s.trimmingCharacters(in: .whitespaces)
        return .int(Int(t) ?? Double(t).flatMap { Int(exactly: $0.rounded(.towardZero)) } ?? 0)
      default: return arg(args, kwargs, 0, "default") ?? .int(0)
      }
    case "float":
      if let n = v.number { return .double(n) }
      if case let .string(s) = v, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .double(d) }
      return arg(args, kwargs, 0, "default") ?? .double(0)
    case "abs":
      switch v {
      case let .int(i): return .int(i == .min ? i : abs(i))
      case let .double(d): return .double(abs(d))
      default: throw fail(line, "bad operand type for abs(): '\(v.typeName)'")
      }
    case "items":
      switch v {
      case .undefined: return .array([])
      case let .object(o): return .array(o.items.map { .tuple([.string($0.0), $0.1]) })
      default: throw fail(line, "items() needs a mapping, not \(v.typeName)")
      }
    case "dictsort":
      guard case let .object(o) = v else { throw fail(line, "dictsort needs a mapping") }
      let caseSensitive = arg(args, kwargs, 0, "case_sensitive")?.truthy ?? false
      let byValue = (arg(args, kwargs, 1, "by").map(str) ?? "key") == "value"
      let reverse = arg(args, kwargs, 2, "reverse")?.truthy ?? false
      let pairs = o.items
      let keys = pairs.map { sortKey(byValue ? $0.1 : .string($0.0), caseSensitive: caseSensitive) }
      return .array(try sortedOrder(keys, reverse: reverse, line: line).map { .tuple([.string(pairs[$0].0), pairs[$0].1]) })
    case "unique":
      let caseSensitive = arg(args, kwargs, 0, "case_sensitive")?.truthy ?? false
      let attr = arg(args, kwargs, 1, "attribute").map(str)
      var out: [JinjaValue] = []
      var seen: [JinjaValue] = []
      for x in try iterate(v, line: line) {
        let key = sortKey(try attr.map { try attribute(x, $0, line: line) } ?? x, caseSensitive: caseSensitive)
        if !seen.contains(where: { Python.equal($0, key) }) {
          seen.append(key)
          out.append(x)
        }
      }
      return .array(out)
    case "sort":
      let reverse = arg(args, kwargs, 0, "reverse")?.truthy ?? false
      let caseSensitive = arg(args, kwargs, 1, "case_sensitive")?.truthy ?? false
      let attr = arg(args, kwargs, 2, "attribute").map(str)
      let items = try iterate(v, line: line)
      let keys = try items.map { x in
        sortKey(try attr.map { try attribute(x, $0, line: line) } ?? x, caseSensitive: caseSensitive)
      }
      return .array(try sortedOrder(keys, reverse: reverse, line: line).map { items[$0] })
    case "min", "max":
      let caseSensitive = arg(args, kwargs, 0, "case_sensitive")?.truthy ?? false
      let attr = arg(args, kwargs, 1, "attribute").map(str)
      let items = try iterate(v, line: line)
      guard !items.isEmpty else { return .undefined }
      let keys = try items.map { x in
        sortKey(try attr.map { try attribute(x, $0, line: line) } ?? x, caseSensitive: caseSensitive)
      }
      var best = 0
      for i in 1..<items.count {
        let (a, b) = name == "min" ? (keys[i], keys[best]) : (keys[best], keys[i])
        guard let lt = Python.less(a, b) else { throw fail(line, "values cannot be compared") }
        if lt { best = i }
      }
      return items[best]
    case "sum":
      return try iterate(v, line: line).reduce(JinjaValue.int(0)) { try binary("+", $0, $1, line: line) }
    case "round":
      guard let n = v.number else { throw fail(line, "round needs a number") }
      let precision = try arg(args, kwargs, 0, "precision").map { try int($0, "precision", line: line) } ?? 0
      let scale = pow(10.0, Double(precision))
      return .double((n * scale).rounded(.toNearestOrEven) / scale)
    case "indent":
      let width = try arg(args, kwargs, 0, "width").map { try int($0, "width", line: line) } ?? 4
      let first = arg(args, kwargs, 1, "first")?.truthy ?? false
      let blank = arg(args, kwargs, 2, "blank")?.truthy ?? false
      let pad = String(repeating: " ", count: min(max(0, width), 1_000))
      let lines = Python.split(str(v), separator: "\n", maxSplit: -1)
      var out: [String] = []
      for (i, l) in lines.enumerated() {
        if i == 0 { out.append(first && !l.isEmpty ? pad + l : l) } else { out.append(blank || !l.isEmpty ? pad + l : l) }
      }
      return .string(out.joined(separator: "\n"))
    case "wordcount":
      return .int(Python.split(str(v), separator: nil, maxSplit: -1).count)
    case "map":
      let items = try iterate(v, line: line)
      if let attr = kwargs["attribute"] {
        return .array(
          try items.map { x in
            let r = try attribute(x, str(attr), line: line)
            return r.isUndefined ? (kwargs["default"] ?? .undefined) : r
          })
      }
      guard case let .string(filterName)? = args.first else { throw fail(line, "map needs a filter name or attribute=") }
      return .array(try items.map { try applyFilter(filterName, $0, args: Array(args.dropFirst()), kwargs: [:], line: line) })
    case "select", "reject", "selectattr", "rejectattr":
      let byAttribute = name.hasSuffix("attr")
      let keep = name.hasPrefix("select")
      var rest = args
      var attr: String? = nil
      if byAttribute {
        guard let a = rest.first else { throw fail(line, "\(name) needs an attribute name") }
        attr = str(a)
        rest.removeFirst()
      }
      var out: [JinjaValue] = []
      for x in try iterate(v, line: line) {
        let subject = try attr.map { try attribute(x, $0, line: line) } ?? x
        let passed: Bool
        if case let .string(testName)? = rest.first {
          passed = try applyTest(testName, subject, args: Array(rest.dropFirst()), line: line)
        } else {
          passed = subject.truthy
        }
        if passed == keep { out.append(x) }
      }
      return .array(out)
    case "batch":
      let size = try int(arg(args, kwargs, 0, "linecount"), "batch size", line: line)
      guard size > 0 else { throw fail(line, "batch size must be positive") }
      let items = try iterate(v, line: line)
      return .array(stride(from: 0, to: items.count, by: size).map { .array(Array(items[$0..<min(items.count, $0 + size)])) })
    default:
      throw fail(line, "no filter named '\(name)'")
    }
  }

  /// Jinja's `ignore_case`: strings compare lowercased unless `caseSensitive`.
  private func sortKey(_ v: JinjaValue, caseSensitive: Bool) -> JinjaValue {
    if !caseSensitive, case let .string(s) = v { return .string(Python.lower(s)) }
    return v
  }

  /// A stable sort of indices by `keys` (Python's `sorted`).
  private func sortedOrder(_ keys: [JinjaValue], reverse: Bool, line: Int) throws -> [Int] {
    var failed = false
    let order = keys.indices.sorted { i, j in
      let (a, b) = reverse ? (keys[j], keys[i]) : (keys[i], keys[j])
      guard let lt = Python.less(a, b) else {
        failed = true
        return i < j
      }
      if lt { return true }
      if Python.less(b, a) == true { return false }
      return i < j
    }
    if failed { throw fail(line, "values of these types cannot be compared") }
    return order
  }
}
