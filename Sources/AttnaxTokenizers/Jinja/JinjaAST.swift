/// An expression of a Jinja template, with its source line.
struct JinjaExpr: Sendable {
  indirect enum Kind: Sendable {
    case literal(JinjaValue)
    case name(String)
    case list([JinjaExpr])
    case tuple([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String)
    case item(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, start: JinjaExpr?, stop: JinjaExpr?, step: JinjaExpr?)
    case call(JinjaExpr, args: [JinjaExpr], kwargs: [(String, JinjaExpr)])
    case filter(JinjaExpr, name: String, args: [JinjaExpr], kwargs: [(String, JinjaExpr)])
    case test(JinjaExpr, name: String, args: [JinjaExpr], negated: Bool)
    case not(JinjaExpr)
    case negate(JinjaExpr)
    case plus(JinjaExpr)
    case binary(String, JinjaExpr, JinjaExpr)
    case and(JinjaExpr, JinjaExpr)
    case or(JinjaExpr, JinjaExpr)
    case conditional(then: JinjaExpr, condition: JinjaExpr, otherwise: JinjaExpr?)
  }

  let kind: Kind
  let line: Int
}

/// Where `{% set %}` stores its value.
enum JinjaSetTarget: Sendable {
  case names([String])
  /// `{% set ns.attr = ... %}`
  case attribute(String, String)
}

/// A statement (node) of a Jinja template.
indirect enum JinjaNode: Sendable {
  case text(String)
  case output(JinjaExpr)
  case ifChain(branches: [(condition: JinjaExpr, body: [JinjaNode])], otherwise: [JinjaNode]?)
  case forLoop(
    targets: [String], iterable: JinjaExpr, condition: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode]?, line: Int)
  case set(JinjaSetTarget, JinjaExpr, line: Int)
  case setBlock(String, body: [JinjaNode])
  case macro(name: String, parameters: [(String, JinjaExpr?)], body: [JinjaNode])
  case filterBlock(filters: [(name: String, args: [JinjaExpr], line: Int)], body: [JinjaNode])
  case loopBreak
  case loopContinue
}
