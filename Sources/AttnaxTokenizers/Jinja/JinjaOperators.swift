import Foundation

/// Python's operators on template values: attribute and item access, slices, comparisons,
/// `in`, `~` and arithmetic (ints stay ints, `/` is true division, `//` and `%` floor).
extension JinjaInterpreter {
  func attribute(_ v: JinjaValue, _ name: String, line: Int) throws -> JinjaValue {
    switch v {
    case .undefined: throw fail(line, "'\(name)' is undefined (attribute of an undefined value)")
    case let .object(o): return o[name] ?? .undefined
    case let .namespace(k): return namespaces[k][name] ?? .undefined
    default: return .undefined
    }
  }

  func item(_ v: JinjaValue, _ index: JinjaValue, line: Int) throws -> JinjaValue {
    switch (v, index) {
    case (.undefined, _): throw fail(line, "cannot take an item of an undefined value")
    case let (.array(a), .int(i)), let (.tuple(a), .int(i)):
      let k = i < 0 ? a.count + i : i
      return k >= 0 && k < a.count ? a[k] : .undefined
    case let (.string(s), .int(i)):
      let u = Array(s.unicodeScalars)
      let k = i < 0 ? u.count + i : i
      return k >= 0 && k < u.count ? .string(String(u[k])) : .undefined
    case let (.object(o), .string(key)): return o[key] ?? .undefined
    case let (.namespace(k), .string(key)): return namespaces[k][key] ?? .undefined
    default: return .undefined
    }
  }

  func slice(_ v: JinjaValue, start: JinjaValue?, stop: JinjaValue?, step: JinjaValue?, line: Int) throws -> JinjaValue {
    func bound(_ x: JinjaValue?) throws -> Int? {
      switch x {
      case nil, .none?: return nil
      case let .int(i)?: return i
      default: throw fail(line, "slice indices must be integers or None")
      }
    }
    let st = try bound(step) ?? 1
    guard st != 0 else { throw fail(line, "slice step cannot be zero") }
    func indices(_ n: Int) throws -> [Int] {
      func clamp(_ i: Int?, _ dflt: Int) -> Int {
        guard var i else { return dflt }
        if i < 0 { i = i &+ n }
        return st > 0 ? min(max(i, 0), n) : min(max(i, -1), n - 1)
      }
      let a = clamp(try bound(start), st > 0 ? 0 : n - 1)
      let b = clamp(try bound(stop), st > 0 ? n : -1)
      return Array(stride(from: a, to: b, by: st))
    }
    switch v {
    case let .array(items): return .array(try indices(items.count).map { items[$0] })
    case let .tuple(items): return .tuple(try indices(items.count).map { items[$0] })
    case let .string(s):
      let u = Array(s.unicodeScalars)
      return .string(String(String.UnicodeScalarView(try indices(u.count).map { u[$0] })))
    case .undefined: throw fail(line, "cannot slice an undefined value")
    default: throw fail(line, "'\(v.typeName)' object is not subscriptable")
    }
  }

  func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue, line: Int) throws -> JinjaValue {
    switch op {
    case "==": return .bool(Python.equal(a, b))
    case "!=": return .bool(!Python.equal(a, b))
    case "<", ">", "<=", ">=":
      let (x, y) = op == "<" || op == "<=" ? (a, b) : (b, a)
      guard let lt = Python.less(x, y) else {
        throw fail(line, "'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
      }
      return .bool(op.count == 2 ? lt || Python.equal(a, b) : lt)
    case "in", "not in":
      let found: Bool
      switch b {
      case let .string(s):
        guard case let .string(needle) = a else {
          throw fail(line, "'in <string>' requires string as left operand, not \(a.typeName)")
        }
        found = s.containsScalars(needle)
      case let .array(items), let .tuple(items): found = items.contains { Python.equal($0, a) }
      case let .object(o):
        if case let .string(k) = a { found = o[k] != nil } else { found = false }
      case .undefined: found = false
      default: throw fail(line, "argument of type '\(b.typeName)' is not iterable")
      }
      return .bool(found == (op == "in"))
    case "~":
      return .string(Python.str(a, namespaces: namespaces) + Python.str(b, namespaces: namespaces))
    default:
      return try arithmetic(op, a, b, line: line)
    }
  }

  private func arithmetic(_ op: String, _ a: JinjaValue, _ b: JinjaValue, line: Int) throws -> JinjaValue {
    if a.isUndefined || b.isUndefined { throw fail(line, "an undefined value used with '\(op)'") }
    let typeError = fail(line, "unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
    switch (op, a, b) {
    case let ("+", .string(x), .string(y)): return .string(x + y)
    case let ("+", .array(x), .array(y)): return .array(x + y)
    case let ("+", .tuple(x), .tuple(y)): return .tuple(x + y)
    case let ("*", .string(x), .int(n)), let ("*", .int(n), .string(x)):
      guard n <= 0 || x.utf8.count <= Self.maxOutput / n else { throw fail(line, "string repetition too large") }
      return .string(String(repeating: x, count: max(0, n)))
    case let ("*", .array(x), .int(n)), let ("*", .int(n), .array(x)):
      guard n <= 0 || x.count <= 1_000_000 / n else { throw fail(line, "list repetition too large") }
      return .array(Array(repeating: x, count: max(0, n)).flatMap { $0 })
    default: break
    }
    if case .string = a { throw typeError }
    if case .string = b { throw typeError }
    // Integers (and booleans) stay integers except for true division.
    func int(_ v: JinjaValue) -> Int? {
      switch v {
      case let .int(i): return i
      case let .bool(b): return b ? 1 : 0
      default: return nil
      }
    }
    if let x = int(a), let y = int(b) {
      switch op {
      case "+": return .int(x &+ y)
      case "-": return .int(x &- y)
      case "*": return .int(x &* y)
      case "/":
        guard y != 0 else { throw fail(line, "division by zero") }
        return .double(Double(x) / Double(y))
      case "//":
        guard y != 0 else { throw fail(line, "integer division or modulo by zero") }
        let (q, overflow) = x.dividedReportingOverflow(by: y)
        guard !overflow else { throw fail(line, "integer overflow") }
        return .int((x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q)
      case "%":
        guard y != 0 else { throw fail(line, "integer division or modulo by zero") }
        let (r, overflow) = x.remainderReportingOverflow(dividingBy: y)
        guard !overflow else { return .int(0) }
        return .int(r != 0 && (r < 0) != (y < 0) ? r + y : r)
      case "**":
        if y >= 0 {
          // By squaring, wrapping like the other integer operators: exact modulo 2^64 for any y.
          var (result, base, e) = (1, x, y)
          while e > 0 {
            if e & 1 == 1 { result = result &* base }
            base = base &* base
            e >>= 1
          }
          return .int(result)
        }
        return .double(pow(Double(x), Double(y)))
      default: throw typeError
      }
    }
    guard let x = a.number, let y = b.number else { throw typeError }
    switch op {
    case "+": return .double(x + y)
    case "-": return .double(x - y)
    case "*": return .double(x * y)
    case "/":
      guard y != 0 else { throw fail(line, "float division by zero") }
      return .double(x / y)
    case "//":
      guard y != 0 else { throw fail(line, "float floor division by zero") }
      return .double((x / y).rounded(.down))
    case "%":
      guard y != 0 else { throw fail(line, "float modulo") }
      let r = x.truncatingRemainder(dividingBy: y)
      return .double(r != 0 && (r < 0) != (y < 0) ? r + y : r)
    case "**": return .double(pow(x, y))
    default: throw typeError
    }
  }
}
