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
    guard let items = value.sequenceItems, items.count == count else {
      throw fail(line, "cannot unpack \(value.typeName) into \(count) names")
    }
    return items
  }

  /// The items a for loop or filter iterates over (Python iteration).
  func iterate(_ v: JinjaValue, line: Int) throws -> [JinjaValue] {
    switch v {
    case .undefined: return []
    case let .array(a), let .tuple(a): return a
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
    case let .tuple(items): return .tuple(try items.map { try eval($0) })
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
        try eval(base), start: try start.map { try eval($0) }, stop: try stop.map { try eval($0) },
        step: try step.map { try eval($0) },
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

  // MARK: - Calls

  private mutating func call(
    _ callee: JinjaExpr, args: [JinjaExpr], kwargs: [(String, JinjaExpr)], line: Int
  ) throws -> JinjaValue {
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
      if case let .object(o) = receiver, case let .macro(m)? = o[method] {
        return try callMacro(m, args: a, kwargs: k, line: line)
      }
      return try callMethod(receiver, method, args: a, kwargs: k, line: line)
    default:
      switch try eval(callee) {
      case let .macro(m): return try callMacro(m, args: a, kwargs: k, line: line)
      case let .builtin(name): return try callGlobal(name, args: a, kwargs: k, line: line)
      default: throw fail(line, "this value is not callable")
      }
    }
  }

  private mutating func callMacro(_ index: Int, args: [JinjaValue], kwargs: [String: JinjaValue], line: Int) throws -> JinjaValue
  {
    let macro = macros[index]
    guard depth < Self.maxDepth else { throw fail(line, "macro calls nested deeper than \(Self.maxDepth)") }
    guard args.count <= macro.parameters.count else {
      throw fail(line, "macro takes \(macro.parameters.count) arguments, got \(args.count)")
    }
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
