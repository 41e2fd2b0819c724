import Foundation

/// Jinja2's tests, Python's str/dict/list methods and the globals Hugging Face provides
/// (`raise_exception`, `strftime_now`), plus Jinja's `range`, `namespace` and `dict`.
extension JinjaInterpreter {
  func str(_ v: JinjaValue) -> String { Python.str(v, namespaces: namespaces) }

  func int(_ v: JinjaValue?, _ name: String, line: Int) throws -> Int {
    switch v {
    case let .int(i)?: return i
    case let .bool(b)?: return b ? 1 : 0
    default: throw fail(line, "\(name) must be an integer")
    }
  }

  func string(_ v: JinjaValue?, _ what: String, line: Int) throws -> String {
    guard case let .string(s)? = v else { throw fail(line, "\(what) must be a string") }
    return s
  }

  /// Argument `i`, or keyword `name`.
  func arg(_ args: [JinjaValue], _ kwargs: [String: JinjaValue], _ i: Int, _ name: String) -> JinjaValue? {
    i < args.count ? args[i] : kwargs[name]
  }

  // MARK: - Tests

  func applyTest(_ name: String, _ v: JinjaValue, args: [JinjaValue], line: Int) throws -> Bool {
    func other() throws -> JinjaValue {
      guard let a = args.first else { throw fail(line, "test '\(name)' needs an argument") }
      return a
    }
    switch name {
    case "defined": return !v.isUndefined
    case "undefined": return v.isUndefined
    case "none": if case .none = v { return true } else { return false }
    case "string": if case .string = v { return true } else { return false }
    case "number": if case .int = v { return true } else if case .double = v { return true } else { return false }
    case "integer": if case .int = v { return true } else { return false }
    case "float": if case .double = v { return true } else { return false }
    case "boolean": if case .bool = v { return true } else { return false }
    case "true": if case .bool(true) = v { return true } else { return false }
    case "false": if case .bool(false) = v { return true } else { return false }
    case "mapping": if case .object = v { return true } else { return false }
    case "iterable":
      switch v {
      case .array, .tuple, .object, .string, .undefined: return true
      default: return false
      }
    case "sequence":
      switch v {
      case .array, .tuple, .object, .string: return true
      default: return false
      }
    case "callable":
      switch v {
      case .macro, .builtin: return true
      default: return false
      }
    case "odd", "even":
      let i = try int(v, "the value", line: line)
      return (i % 2 != 0) == (name == "odd")
    case "divisibleby":
      let d = try int(try other(), "the divisor", line: line)
      let x = try int(v, "the value", line: line)
      return d != 0 && x % d == 0
    case "eq", "equalto", "==": return Python.equal(v, try other())
    case "ne", "!=": return !Python.equal(v, try other())
    case "lt", "lessthan", "<": return try binary("<", v, try other(), line: line).truthy
    case "le", "<=": return try binary("<=", v, try other(), line: line).truthy
    case "gt", "greaterthan", ">": return try binary(">", v, try other(), line: line).truthy
    case "ge", ">=": return try binary(">=", v, try other(), line: line).truthy
    case "in": return try binary("in", v, try other(), line: line).truthy
    case "lower": return str(v) == Python.lower(str(v))
    case "upper": return str(v) == Python.upper(str(v))
    case "sameas":
      return Python.equal(v, try other())
    default: throw fail(line, "no test named '\(name)'")
    }
  }

  // MARK: - Methods

  mutating func callMethod(
    _ receiver: JinjaValue, _ method: String, args: [JinjaValue], kwargs: [String: JinjaValue], line: Int
  ) throws
    -> JinjaValue
  {
    switch receiver {
    case .undefined:
      throw fail(line, "'\(method)' of an undefined value")
    case let .string(s):
      return try stringMethod(s, method, args: args, kwargs: kwargs, line: line)
    case let .object(o):
      if o["index0"] != nil, o["revindex"] != nil, method == "cycle" {
        guard !args.isEmpty, case let .int(i)? = o["index0"] else { throw fail(line, "loop.cycle needs arguments") }
        return args[i % args.count]
      }
      switch method {
      case "items": return .array(o.items.map { .tuple([.string($0.0), $0.1]) })
      case "keys": return .array(o.keys.map { .string($0) })
      case "values": return .array(o.items.map { $0.1 })
      case "get":
        guard case let .string(k)? = args.first else { throw fail(line, "get() needs a string key") }
        return o[k] ?? (args.count > 1 ? args[1] : .none)
      default: throw fail(line, "'dict' object has no method '\(method)'")
      }
    case let .array(items), let .tuple(items):
      switch method {
      case "index":
        guard let x = args.first, let i = items.firstIndex(where: { Python.equal($0, x) }) else {
          throw fail(line, "value is not in list")
        }
        return .int(i)
      case "count":
        guard let x = args.first else { throw fail(line, "count() needs an argument") }
        return .int(items.filter { Python.equal($0, x) }.count)
      default: throw fail(line, "'list' object has no method '\(method)' (lists are immutable in templates)")
      }
    default:
      throw fail(line, "'\(receiver.typeName)' object has no method '\(method)'")
    }
  }

  private func stringMethod(
    _ s: String, _ method: String, args: [JinjaValue], kwargs: [String: JinjaValue], line: Int
  ) throws
    -> JinjaValue
  {
    func optionalString(_ i: Int, _ name: String) throws -> String? {
      switch arg(args, kwargs, i, name) {
      case nil, .none?: return nil
      case let .string(x)?: return x
      default: throw fail(line, "\(method)() argument must be a string or None")
      }
    }
    switch method {
    case "strip": return .string(Python.strip(s, chars: try optionalString(0, "chars"), left: true, right: true))
    case "lstrip": return .string(Python.strip(s, chars: try optionalString(0, "chars"), left: true, right: false))
    case "rstrip": return .string(Python.strip(s, chars: try optionalString(0, "chars"), left: false, right: true))
    case "lower": return .string(Python.lower(s))
    case "upper": return .string(Python.upper(s))
    case "title": return .string(Python.title(s))
    case "capitalize": return .string(Python.capitalize(s))
    case "startswith", "endswith":
      let candidates: [String]
      switch args.first {
      case let .string(x)?: candidates = [x]
      case let .tuple(xs)?, let .array(xs)?: candidates = try xs.map { try string($0, "\(method)() argument", line: line) }
      default: throw fail(line, "\(method)() needs a string")
      }
      return .bool(candidates.contains { method == "startswith" ? s.hasScalarPrefix($0) : s.hasScalarSuffix($0) })
    case "split", "rsplit":
      let maxSplit = try arg(args, kwargs, 1, "maxsplit").map { try int($0, "maxsplit", line: line) } ?? -1
      if method == "rsplit", maxSplit >= 0 { throw fail(line, "rsplit with maxsplit is not supported") }
      return .array(Python.split(s, separator: try optionalString(0, "sep"), maxSplit: maxSplit).map { .string($0) })
    case "splitlines":
      var lines = Python.split(
        s.replacingScalars("\r\n", with: "\n").replacingScalars("\r", with: "\n"), separator: "\n", maxSplit: -1)
      if lines.last == "" { lines.removeLast() }
      return .array(lines.map { .string($0) })
    case "replace":
      let old = try string(args.first, "replace() argument 1", line: line)
      let new = try string(args.count > 1 ? args[1] : nil, "replace() argument 2", line: line)
      let count = args.count > 2 ? try int(args[2], "count", line: line) : -1
      return .string(s.replacingScalars(old, with: new, limit: count < 0 ? .max : count))
    case "join":
      guard let x = args.first else { throw fail(line, "join() needs an iterable") }
      return .string(try iterate(x, line: line).map { try string($0, "join() item", line: line) }.joined(separator: s))
    case "find", "count":
      let needle = try string(args.first, "\(method)() argument", line: line)
      let hay = Array(s.unicodeScalars)
      let n = Array(needle.unicodeScalars)
      var hits: [Int] = []
      var i = 0
      while i + n.count <= hay.count {
        if hay[i..<(i + n.count)].elementsEqual(n) {
          hits.append(i)
          if method == "find" { break }
          i += max(1, n.count)
        } else {
          i += 1
        }
      }
      return .int(method == "find" ? (hits.first ?? -1) : hits.count)
    case "isdigit", "isalpha", "isspace", "isupper", "islower":
      let u = s.unicodeScalars
      guard !u.isEmpty else { return .bool(false) }
      switch method {
      case "isdigit": return .bool(u.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit })
      case "isalpha": return .bool(u.allSatisfy(CharClass.isLetter))
      case "isspace": return .bool(u.allSatisfy(CharClass.isPythonSpace))
      case "isupper": return .bool(s == Python.upper(s) && s != Python.lower(s))
      default: return .bool(s == Python.lower(s) && s != Python.upper(s))
      }
    default:
      throw fail(line, "'str' object has no method '\(method)'")
    }
  }

  // MARK: - Globals

  /// The environment's global functions.
  static let globalFunctions: Set<String> = ["raise_exception", "range", "namespace", "dict", "strftime_now"]

  mutating func callGlobal(_ name: String, args: [JinjaValue], kwargs: [String: JinjaValue], line: Int) throws -> JinjaValue {
    switch name {
    case "raise_exception":
      throw ChatTemplateError.raised(args.first.map(str) ?? "")
    case "range":
      let ints = try args.map { try int($0, "range() argument", line: line) }
      let (a, b, step): (Int, Int, Int)
      switch ints.count {
      case 1: (a, b, step) = (0, ints[0], 1)
      case 2: (a, b, step) = (ints[0], ints[1], 1)
      case 3: (a, b, step) = (ints[0], ints[1], ints[2])
      default: throw fail(line, "range() takes 1 to 3 arguments")
      }
      guard step != 0 else { throw fail(line, "range() step must not be zero") }
      let values = Array(stride(from: a, to: b, by: step).prefix(1_000_000))
      return .array(values.map { .int($0) })
    case "namespace", "dict":
      var o = JinjaObject()
      if case let .object(initial)? = args.first { for (k, v) in initial.items { o[k] = v } }
      for k in kwargs.keys.sorted() { o[k] = kwargs[k] }
      if name == "dict" { return .object(o) }
      namespaces.append(o)
      return .namespace(namespaces.count - 1)
    case "strftime_now":
      let format = try string(args.first, "strftime_now() format", line: line)
      return .string(Self.strftime(format, now))
    default:
      throw fail(line, "'\(name)' is undefined")
    }
  }

  /// A small `strftime` for dates in prompts (`%d %b %Y` and friends), in UTC.
  static func strftime(_ format: String, _ date: Date) -> String {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
    let months = [
      "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December",
    ]
    let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    func two(_ x: Int?) -> String { let v = x ?? 0; return v < 10 ? "0\(v)" : "\(v)" }
    var out = ""
    var percent = false
    for ch in format {
      if !percent {
        if ch == "%" { percent = true } else { out.append(ch) }
        continue
      }
      percent = false
      let month = months[max(0, min(11, (c.month ?? 1) - 1))]
      let day = days[max(0, min(6, (c.weekday ?? 1) - 1))]
      switch ch {
      case "d": out += two(c.day)
      case "m": out += two(c.month)
      case "Y": out += String(c.year ?? 0)
      case "y": out += two((c.year ?? 0) % 100)
      case "b": out += String(month.prefix(3))
      case "B": out += month
      case "a": out += String(day.prefix(3))
      case "A": out += day
      case "H": out += two(c.hour)
      case "M": out += two(c.minute)
      case "S": out += two(c.second)
      case "%": out += "%"
      default: out += "%" + String(ch)
      }
    }
    return out
  }
}
