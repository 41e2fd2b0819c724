/// Jinja expressions, with Jinja2's precedence (lowest first): `x if c else y`, `or`, `and`,
/// `not`, comparisons and `in`, `+ -`, `~`, `* / // %`, `**`, unary `- +`, then postfix
/// `.attr`, `[item]`, `(call)` and the filter / test chain (`|trim`, `is defined`).
extension JinjaParser {
  private func make(_ kind: JinjaExpr.Kind, _ line: Int) -> JinjaExpr { JinjaExpr(kind: kind, line: line) }

  mutating func expression(withCondition: Bool = true) throws -> JinjaExpr {
    withCondition ? try conditional() : try or()
  }

  /// One expression, or a tuple of them separated by commas.
  mutating func tuple(withCondition: Bool) throws -> JinjaExpr {
    let l = line
    var items = [try expression(withCondition: withCondition)]
    guard current == .op(",") else { return items[0] }
    while skip(.op(",")) {
      if [.blockEnd, .variableEnd, .op(")")].contains(current) { break }
      items.append(try expression(withCondition: withCondition))
    }
    return make(.tuple(items), l)
  }

  private mutating func conditional() throws -> JinjaExpr {
    try enter()
    defer { depth -= 1 }
    var e = try or()
    while skipName("if") {
      let l = line
      let condition = try or()
      let otherwise = skipName("else") ? try conditional() : nil
      e = make(.conditional(then: e, condition: condition, otherwise: otherwise), l)
    }
    return e
  }

  private mutating func or() throws -> JinjaExpr {
    var e = try and()
    while skipName("or") { e = make(.or(e, try and()), line) }
    return e
  }

  private mutating func and() throws -> JinjaExpr {
    var e = try not()
    while skipName("and") { e = make(.and(e, try not()), line) }
    return e
  }

  private mutating func not() throws -> JinjaExpr {
    try enter()
    defer { depth -= 1 }
    let l = line
    if skipName("not") { return make(.not(try not()), l) }
    return try compare()
  }

  private mutating func compare() throws -> JinjaExpr {
    var left = try math1()
    var result: JinjaExpr? = nil
    while true {
      let l = line
      var op: String
      if case let .op(o) = current, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
        op = o
        p += 1
      } else if current == .name("in") {
        op = "in"
        p += 1
      } else if current == .name("not"), peek(1) == .name("in") {
        op = "not in"
        p += 2
      } else {
        break
      }
      let right = try math1()
      let pair = make(.binary(op, left, right), l)
      // a < b < c means a < b and b < c.
      result = result.map { make(.and($0, pair), l) } ?? pair
      left = right
    }
    return result ?? left
  }

  private mutating func math1() throws -> JinjaExpr {
    var e = try concat()
    while case let .op(o) = current, o == "+" || o == "-" {
      let l = line
      p += 1
      e = make(.binary(o, e, try concat()), l)
    }
    return e
  }

  private mutating func concat() throws -> JinjaExpr {
    var e = try math2()
    while current == .op("~") {
      let l = line
      p += 1
      e = make(.binary("~", e, try math2()), l)
    }
    return e
  }

  private mutating func math2() throws -> JinjaExpr {
    var e = try pow()
    while case let .op(o) = current, ["*", "/", "//", "%"].contains(o) {
      let l = line
      p += 1
      e = make(.binary(o, e, try pow()), l)
    }
    return e
  }

  private mutating func pow() throws -> JinjaExpr {
    var e = try unary(withFilter: true)
    while current == .op("**") {
      let l = line
      p += 1
      e = make(.binary("**", e, try unary(withFilter: true)), l)
    }
    return e
  }

  private mutating func unary(withFilter: Bool) throws -> JinjaExpr {
    try enter()
    defer { depth -= 1 }
    let l = line
    var e: JinjaExpr
    if skip(.op("-")) {
      e = make(.negate(try unary(withFilter: false)), l)
    } else if skip(.op("+")) {
      e = make(.plus(try unary(withFilter: false)), l)
    } else {
      e = try primary()
    }
    e = try postfix(e)
    if withFilter { e = try filterChain(e) }
    return e
  }

  private mutating func primary() throws -> JinjaExpr {
    let l = line
    switch current {
    case let .name(n):
      p += 1
      switch n {
      case "true", "True": return make(.literal(.bool(true)), l)
      case "false", "False": return make(.literal(.bool(false)), l)
      case "none", "None": return make(.literal(.none), l)
      default: return make(.name(n), l)
      }
    case .string:
      var s = ""
      while case let .string(part) = current {
        s += part
        p += 1
      }
      return make(.literal(.string(s)), l)
    case let .int(v):
      p += 1
      return make(.literal(.int(v)), l)
    case let .float(v):
      p += 1
      return make(.literal(.double(v)), l)
    case .op("("):
      p += 1
      if skip(.op(")")) { return make(.tuple([]), l) }
      let e = try tuple(withCondition: true)
      try expect(.op(")"), ")")
      return e
    case .op("["):
      p += 1
      var items: [JinjaExpr] = []
      while !skip(.op("]")) {
        if !items.isEmpty { try expect(.op(","), ",") }
        if skip(.op("]")) { break }
        items.append(try expression())
      }
      return make(.list(items), l)
    case .op("{"):
      p += 1
      var pairs: [(JinjaExpr, JinjaExpr)] = []
      while !skip(.op("}")) {
        if !pairs.isEmpty { try expect(.op(","), ",") }
        if skip(.op("}")) { break }
        let k = try expression()
        try expect(.op(":"), ":")
        pairs.append((k, try expression()))
      }
      return make(.dict(pairs), l)
    default:
      throw fail("unexpected \(describe(current))")
    }
  }

  private func describe(_ t: JinjaToken) -> String {
    switch t {
    case .blockEnd: return "%}"
    case .variableEnd: return "}}"
    case .eof: return "end of template"
    case let .op(o): return "'\(o)'"
    case let .name(n): return "'\(n)'"
    default: return "token"
    }
  }

  private mutating func postfix(_ base: JinjaExpr) throws -> JinjaExpr {
    var e = base
    while true {
      let l = line
      if skip(.op(".")) {
        switch current {
        case let .name(n):
          p += 1
          e = make(.attribute(e, n), l)
        case let .int(v):
          p += 1
          e = make(.item(e, make(.literal(.int(v)), l)), l)
        default:
          throw fail("expected an attribute name after '.'")
        }
      } else if skip(.op("[")) {
        e = try subscripted(e, l)
      } else if current == .op("(") {
        let (args, kwargs) = try callArguments()
        e = make(.call(e, args: args, kwargs: kwargs), l)
      } else {
        return e
      }
    }
  }

  private mutating func subscripted(_ base: JinjaExpr, _ l: Int) throws -> JinjaExpr {
    var parts: [JinjaExpr?] = []
    var isSlice = false
    var part: JinjaExpr? = nil
    while true {
      if skip(.op(":")) {
        isSlice = true
        parts.append(part)
        part = nil
        continue
      }
      if skip(.op("]")) {
        parts.append(part)
        break
      }
      guard part == nil else { throw fail("expected ':' or ']'") }
      part = try expression()
    }
    if isSlice {
      guard parts.count <= 3 else { throw fail("too many ':' in a slice") }
      return make(
        .slice(base, start: parts[0], stop: parts.count > 1 ? parts[1] : nil, step: parts.count > 2 ? parts[2] : nil), l)
    }
    guard let index = parts[0] else { throw fail("empty subscript") }
    return make(.item(base, index), l)
  }

  mutating func callArguments() throws -> (args: [JinjaExpr], kwargs: [(String, JinjaExpr)]) {
    try expect(.op("("), "(")
    var args: [JinjaExpr] = []
    var kwargs: [(String, JinjaExpr)] = []
    while !skip(.op(")")) {
      if !(args.isEmpty && kwargs.isEmpty) { try expect(.op(","), ",") }
      if skip(.op(")")) { break }
      if case let .name(n) = current, peek(1) == .op("=") {
        p += 2
        kwargs.append((n, try expression()))
      } else {
        guard kwargs.isEmpty else { throw fail("a positional argument follows a keyword argument") }
        args.append(try expression())
      }
    }
    return (args, kwargs)
  }

  mutating func dottedName() throws -> String {
    var n = try name()
    while current == .op("."), case let .name(part) = peek(1) {
      p += 2
      n += "." + part
    }
    return n
  }

  private mutating func filterChain(_ base: JinjaExpr) throws -> JinjaExpr {
    var e = base
    while true {
      let l = line
      if skip(.op("|")) {
        let n = try dottedName()
        var args: [JinjaExpr] = []
        var kwargs: [(String, JinjaExpr)] = []
        if current == .op("(") { (args, kwargs) = try callArguments() }
        e = make(.filter(e, name: n, args: args, kwargs: kwargs), l)
      } else if skipName("is") {
        let negated = skipName("not")
        let n = try dottedName()
        var args: [JinjaExpr] = []
        if current == .op("(") {
          args = try callArguments().args
        } else if startsPrimary(current), ![.name("else"), .name("or"), .name("and")].contains(current) {
          if current == .name("is") { throw fail("tests cannot be chained with 'is'") }
          args = [try postfix(try primary())]
        }
        e = make(.test(e, name: n, args: args, negated: negated), l)
      } else if current == .op("(") {
        let (args, kwargs) = try callArguments()
        e = make(.call(e, args: args, kwargs: kwargs), l)
      } else {
        return e
      }
    }
  }

  private func startsPrimary(_ t: JinjaToken) -> Bool {
    switch t {
    case .name, .string, .int, .float: return true
    case .op("("), .op("["), .op("{"): return true
    default: return false
    }
  }
}
