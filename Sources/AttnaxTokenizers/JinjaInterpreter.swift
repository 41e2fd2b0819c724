import Foundation

/// Runs a parsed template: statements, scopes, loops, macros and expression evaluation.
/// Filters, tests, methods and global functions live in `JinjaBuiltins.swift`.
struct JinjaInterpreter {
  enum Flow {
    case normal, breakLoop, continueLoop
  }

  struct Macro {
    var parameters: [(String, JinjaExpr?)]
    var body: [JinjaNode]
  }

  /// Variable scopes, outermost (the render context) first. A for loop and a macro call push
  /// one; `set` writes to the innermost.
  var scopes: [[String: JinjaValue]]
  var namespaces: [JinjaObject] = []
  var macros: [Macro] = []
  var output = ""
  /// Guards against runaway templates.
  var steps = 0
  static let maxSteps = 1_000_000
  static let maxDepth = 50
  /// The most text a render may produce (bytes).
  static let maxOutput = 64 << 20
  var depth = 0

  /// What `strftime_now` formats.
  var now: Date

  init(context: [String: JinjaValue], now: Date) {
    scopes = [context]
    self.now = now
  }

  func fail(_ line: Int, _ message: String) -> ChatTemplateError { .runtime(line: line, message: message) }

  func lookup(_ name: String) -> JinjaValue {
    for scope in scopes.reversed() {
      if let v = scope[name] { return v }
    }
    return Self.globalFunctions.contains(name) ? .builtin(name) : .undefined
  }

  mutating func assign(_ name: String, _ value: JinjaValue) { scopes[scopes.count - 1][name] = value }

  // MARK: - Statements

  mutating func exec(_ nodes: [JinjaNode]) throws -> Flow {
    for node in nodes {
      steps += 1
      if steps > Self.maxSteps { throw fail(0, "template ran for more than \(Self.maxSteps) steps") }
      switch node {
      case let .text(t):
        output += t
        if output.utf8.count > Self.maxOutput { throw fail(0, "the template printed more than \(Self.maxOutput) bytes") }
      case let .output(e):
        output += Python.str(try eval(e), namespaces: namespaces)
        if output.utf8.count > Self.maxOutput { throw fail(e.line, "the template printed more than \(Self.maxOutput) bytes") }
      case let .ifChain(branches, otherwise):
        var taken = false
        for b in branches where try eval(b.condition).truthy {
          taken = true
          let flow = try exec(b.body)
          if flow != .normal { return flow }
          break
        }
        if !taken, let otherwise {
          let flow = try exec(otherwise)
          if flow != .normal { return flow }
        }
      case let .forLoop(targets, iterable, condition, body, otherwise, line):
        try runLoop(targets: targets, iterable: iterable, condition: condition, body: body, otherwise: otherwise, line: line)
      case let .set(target, e, line):
        let value = try eval(e)
        switch target {
        case let .names(names):
          if names.count == 1 {
            assign(names[0], value)
          } else {
            let items = try unpack(value, count: names.count, line: line)
            for (n, v) in zip(names, items) { assign(n, v) }
          }
        case let .attribute(name, attr):
          guard case let .namespace(k) = lookup(name) else {
            throw fail(line, "cannot assign attribute on non-namespace object '\(name)'")
          }
          namespaces[k][attr] = value
        }
      case let .setBlock(name, body):
        assign(name, .string(try capture(body)))
      case let .macro(name, parameters, body):
        macros.append(Macro(parameters: parameters, body: body))
        assign(name, .macro(macros.count - 1))
      case let .filterBlock(filters, body):
        var value = JinjaValue.string(try capture(body))
        for f in filters {
          let args = try f.args.map { try eval($0) }
          value = try applyFilter(f.name, value, args: args, kwargs: [:], line: f.line)
        }
        output += Python.str(value, namespaces: namespaces)
      case .loopBreak:
        return .breakLoop
      case .loopContinue:
        return .continueLoop
      }
    }
    return .normal
  }

  /// Runs `body` and returns what it printed instead of printing it.
  mutating func capture(_ body: [JinjaNode]) throws -> String {
    let saved = output
    output = ""
    defer { output = saved }
    _ = try exec(body)
    return output
  }

  func unpack(_ value: JinjaValue, count: Int, line: Int) throws -> [JinjaValue] {
    guard case let .array(items) = value, items.count == count else {
      throw fail(line, "cannot unpack \(value.typeName) into \(count) names")
    }
    return items
  }

  /// The items a for loop or filter iterates over (Python iteration).
  func iterate(_ v: JinjaValue, line: Int) throws -> [JinjaValue] {
    switch v {
    case .undefined: return []
    case let .array(a): return a
    case let .object(o): return o.keys.map { .string($0) }
    case let .string(s): return s.unicodeScalars.map { .string(String($0)) }
    default: throw fail(line, "'\(v.typeName)' object is not iterable")
    }
  }

  private mutating func runLoop(
    targets: [String], iterable: JinjaExpr, condition: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode]?, line: Int
  ) throws {
    var items = try iterate(try eval(iterable), line: line)
    scopes.append([:])
    defer { scopes.removeLast() }
    func bind(_ interpreter: inout JinjaInterpreter, _ item: JinjaValue) throws {
      if targets.count == 1 {
        interpreter.assign(targets[0], item)
      } else {
        for (n, v) in zip(targets, try interpreter.unpack(item, count: targets.count, line: line)) { interpreter.assign(n, v) }
      }
    }
    if let condition {
      var kept: [JinjaValue] = []
      for item in items {
        try bind(&self, item)
        if try eval(condition).truthy { kept.append(item) }
      }
      items = kept
    }
    if items.isEmpty {
      if let otherwise { _ = try exec(otherwise) }
      return
    }
    for (i, item) in items.enumerated() {
      steps += 1
      if steps > Self.maxSteps { throw fail(line, "template ran for more than \(Self.maxSteps) steps") }
      try bind(&self, item)
      var loop = JinjaObject()
      loop["index"] = .int(i + 1)
      loop["index0"] = .int(i)
      loop["revindex"] = .int(items.count - i)
      loop["revindex0"] = .int(items.count - i - 1)
      loop["first"] = .bool(i == 0)
      loop["last"] = .bool(i == items.count - 1)
      loop["length"] = .int(items.count)
      loop["previtem"] = i > 0 ? items[i - 1] : .undefined
      loop["nextitem"] = i + 1 < items.count ? items[i + 1] : .undefined
      loop["depth"] = .int(1)
      loop["depth0"] = .int(0)
      assign("loop", .object(loop))
      if try exec(body) == .breakLoop { break }
    }
  }

  // MARK: - Expressions

  mutating func eval(_ e: JinjaExpr) throws -> JinjaValue {
    do {
      return try evalKind(e)
    } catch let error as PythonError {
      throw fail(e.line, error.message)
    }
  }

  private mutating func evalKind(_ e: JinjaExpr) throws -> JinjaValue {
    switch e.kind {
    case let .literal(v): return v
    case let .name(n): return lookup(n)
    case let .list(items): return .array(try items.map { try eval($0) })
    case let .tuple(items): return .array(try items.map { try eval($0) })
    case let .dict(pairs):
      var o = JinjaObject()
      for (k, v) in pairs {
        let key = try eval(k)
        guard case let .string(ks) = key else { throw fail(e.line, "only string keys are supported in dict literals") }
        o[ks] = try eval(v)
      }
      return .object(o)
    case let .attribute(base, name):
      return try attribute(try eval(base), name, line: e.line)
    case let .item(base, index):
      return try item(try eval(base), try eval(index), line: e.line)
    case let .slice(base, start, stop, step):
      return try slice(
        try eval(base), start: try start.map { try eval($0) }, stop: try stop.map { try eval($0) }, step: try step.map { try eval($0) },
        line: e.line)
    case let .call(callee, args, kwargs):
      return try call(callee, args: args, kwargs: kwargs, line: e.line)
    case let .filter(base, name, args, kwargs):
      let value = try eval(base)
      let a = try args.map { try eval($0) }
      var k: [String: JinjaValue] = [:]
      for (n, v) in kwargs { k[n] = try eval(v) }
      return try applyFilter(name, value, args: a, kwargs: k, line: e.line)
    case let .test(base, name, args, negated):
      let result = try applyTest(name, try eval(base), args: try args.map { try eval($0) }, line: e.line)
      return .bool(result != negated)
    case let .not(x): return .bool(!(try eval(x)).truthy)
    case let .negate(x):
      switch try eval(x) {
      case let .int(i): return .int(0 &- i)
      case let .double(d): return .double(-d)
      case let .bool(b): return .int(b ? -1 : 0)
      case let v: throw fail(e.line, "bad operand type for unary -: '\(v.typeName)'")
      }
    case let .plus(x):
      let v = try eval(x)
      guard v.number != nil else { throw fail(e.line, "bad operand type for unary +: '\(v.typeName)'") }
      return v
    case let .and(a, b):
      let left = try eval(a)
      return left.truthy ? try eval(b) : left
    case let .or(a, b):
      let left = try eval(a)
      return left.truthy ? left : try eval(b)
    case let .conditional(then, condition, otherwise):
      if try eval(condition).truthy { return try eval(then) }
      return try otherwise.map { try eval($0) } ?? .undefined
    case let .binary(op, a, b):
      return try binary(op, try eval(a), try eval(b), line: e.line)
    }
  }

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
    case let (.array(a), .int(i)):
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
        guard case let .string(needle) = a else { throw fail(line, "'in <string>' requires string as left operand, not \(a.typeName)") }
        found = s.containsScalars(needle)
      case let .array(items): found = items.contains { Python.equal($0, a) }
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
          var result = 1
          for _ in 0..<min(y, 64) { result = result &* x }
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

  // MARK: - Calls

  private mutating func call(_ callee: JinjaExpr, args: [JinjaExpr], kwargs: [(String, JinjaExpr)], line: Int) throws -> JinjaValue {
    let a = try args.map { try eval($0) }
    var k: [String: JinjaValue] = [:]
    for (n, v) in kwargs { k[n] = try eval(v) }
    switch callee.kind {
    case let .name(n):
      switch lookup(n) {
      case let .macro(m): return try callMacro(m, args: a, kwargs: k, line: line)
      case let .builtin(name): return try callGlobal(name, args: a, kwargs: k, line: line)
      case .undefined: throw fail(line, "'\(n)' is undefined")
      default: throw fail(line, "'\(n)' is not callable")
      }
    case let .attribute(base, method):
      let receiver = try eval(base)
      if case let .object(o) = receiver, case let .macro(m)? = o[method] { return try callMacro(m, args: a, kwargs: k, line: line) }
      return try callMethod(receiver, method, args: a, kwargs: k, line: line)
    default:
      switch try eval(callee) {
      case let .macro(m): return try callMacro(m, args: a, kwargs: k, line: line)
      case let .builtin(name): return try callGlobal(name, args: a, kwargs: k, line: line)
      default: throw fail(line, "this value is not callable")
      }
    }
  }

  private mutating func callMacro(_ index: Int, args: [JinjaValue], kwargs: [String: JinjaValue], line: Int) throws -> JinjaValue {
    let macro = macros[index]
    guard depth < Self.maxDepth else { throw fail(line, "macro calls nested deeper than \(Self.maxDepth)") }
    guard args.count <= macro.parameters.count else { throw fail(line, "macro takes \(macro.parameters.count) arguments, got \(args.count)") }
    var scope: [String: JinjaValue] = [:]
    for (i, (name, dflt)) in macro.parameters.enumerated() {
      if i < args.count {
        scope[name] = args[i]
      } else if let v = kwargs[name] {
        scope[name] = v
      } else if let dflt {
        scope[name] = try eval(dflt)
      } else {
        scope[name] = .undefined
      }
    }
    let savedScopes = scopes
    scopes = [scopes[0], scope]
    depth += 1
    defer {
      scopes = savedScopes
      depth -= 1
    }
    return .string(try capture(macro.body))
  }
}
