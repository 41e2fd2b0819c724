/// A recursive-descent parser for the Jinja subset chat templates use: the token helpers and
/// the statements (`if`, `for`, `set`, `macro`, `filter`, `break`, `continue`,
/// `generation`); expressions are in JinjaExpressionParser.swift.
struct JinjaParser {
  let tokens: [(token: JinjaToken, line: Int)]
  var p = 0
  /// Nesting of blocks and sub-expressions, bounded so a hostile template cannot exhaust the stack.
  var depth = 0
  static let maxDepth = 100

  init(tokens: [(token: JinjaToken, line: Int)]) { self.tokens = tokens }

  static func parse(_ source: String) throws -> [JinjaNode] {
    var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
    let (nodes, end) = try parser.nodes(until: [])
    if let end { throw ChatTemplateError.syntax(line: parser.line, message: "unexpected {% \(end) %}") }
    return nodes
  }

  // MARK: - Token helpers

  var current: JinjaToken { tokens[min(p, tokens.count - 1)].token }
  var line: Int { tokens[min(p, tokens.count - 1)].line }
  func peek(_ k: Int) -> JinjaToken { tokens[min(p + k, tokens.count - 1)].token }

  func fail(_ message: String) -> ChatTemplateError { .syntax(line: line, message: message) }

  mutating func skip(_ t: JinjaToken) -> Bool {
    guard current == t else { return false }
    p += 1
    return true
  }

  mutating func skipName(_ n: String) -> Bool { skip(.name(n)) }

  mutating func enter() throws {
    depth += 1
    if depth > Self.maxDepth { throw fail("nested more than \(Self.maxDepth) levels deep") }
  }

  mutating func expect(_ t: JinjaToken, _ what: String) throws {
    guard skip(t) else { throw fail("expected \(what)") }
  }

  mutating func name() throws -> String {
    guard case let .name(n) = current else { throw fail("expected a name") }
    p += 1
    return n
  }

  // MARK: - Statements

  /// Nodes up to one of the block tags in `ends` (returned, after its name) or the end.
  mutating func nodes(until ends: Set<String>) throws -> ([JinjaNode], String?) {
    try enter()
    defer { depth -= 1 }
    var out: [JinjaNode] = []
    while true {
      switch current {
      case .eof:
        if !ends.isEmpty { throw fail("missing {% \(ends.sorted().joined(separator: " / ")) %}") }
        return (out, nil)
      case let .text(t):
        p += 1
        out.append(.text(t))
      case .variableBegin:
        p += 1
        let e = try expression()
        try expect(.variableEnd, "}}")
        out.append(.output(e))
      case .blockBegin:
        guard case let .name(keyword) = peek(1) else { throw fail("expected a tag name after {%") }
        if ends.contains(keyword) {
          p += 2
          return (out, keyword)
        }
        p += 2
        out.append(contentsOf: try statement(keyword))
      default:
        throw fail("unexpected token")
      }
    }
  }

  private mutating func endTag() throws { try expect(.blockEnd, "%}") }

  private mutating func statement(_ keyword: String) throws -> [JinjaNode] {
    let startLine = line
    switch keyword {
    case "if":
      var branches: [(condition: JinjaExpr, body: [JinjaNode])] = []
      var condition = try expression()
      try endTag()
      while true {
        let (body, end) = try nodes(until: ["elif", "else", "endif"])
        branches.append((condition, body))
        if end == "elif" {
          condition = try expression()
          try endTag()
          continue
        }
        if end == "else" {
          try endTag()
          let (otherwise, _) = try nodes(until: ["endif"])
          try endTag()
          return [.ifChain(branches: branches, otherwise: otherwise)]
        }
        try endTag()
        return [.ifChain(branches: branches, otherwise: nil)]
      }
    case "for":
      var targets = [try name()]
      while skip(.op(",")) { targets.append(try name()) }
      guard skipName("in") else { throw fail("expected 'in'") }
      let iterable = try tuple(withCondition: false)
      let condition = skipName("if") ? try expression() : nil
      if skipName("recursive") { throw fail("recursive loops are not supported") }
      try endTag()
      let (body, end) = try nodes(until: ["else", "endfor"])
      var otherwise: [JinjaNode]? = nil
      if end == "else" {
        try endTag()
        otherwise = try nodes(until: ["endfor"]).0
      }
      try endTag()
      return [
        .forLoop(targets: targets, iterable: iterable, condition: condition, body: body, otherwise: otherwise, line: startLine)
      ]
    case "set":
      let first = try name()
      if skip(.op(".")) {
        let attr = try name()
        try expect(.op("="), "=")
        let value = try expression()
        try endTag()
        return [.set(.attribute(first, attr), value, line: startLine)]
      }
      var names = [first]
      while skip(.op(",")) { names.append(try name()) }
      if skip(.op("=")) {
        let value = try tuple(withCondition: true)
        try endTag()
        return [.set(.names(names), value, line: startLine)]
      }
      guard names.count == 1 else { throw fail("expected =") }
      try endTag()
      let (body, _) = try nodes(until: ["endset"])
      try endTag()
      return [.setBlock(first, body: body)]
    case "macro":
      let macroName = try name()
      try expect(.op("("), "(")
      var parameters: [(String, JinjaExpr?)] = []
      while !skip(.op(")")) {
        if !parameters.isEmpty { try expect(.op(","), ",") }
        if skip(.op(")")) { break }
        let param = try name()
        parameters.append((param, skip(.op("=")) ? try expression() : nil))
      }
      try endTag()
      let (body, _) = try nodes(until: ["endmacro"])
      try endTag()
      return [.macro(name: macroName, parameters: parameters, body: body)]
    case "filter":
      var filters: [(name: String, args: [JinjaExpr], line: Int)] = []
      repeat {
        let filterLine = line
        let n = try dottedName()
        let args = current == .op("(") ? try callArguments().args : []
        filters.append((n, args, filterLine))
      } while skip(.op("|"))
      try endTag()
      let (body, _) = try nodes(until: ["endfilter"])
      try endTag()
      return [.filterBlock(filters: filters, body: body)]
    case "generation":
      // Hugging Face's AssistantTracker block: renders its body.
      try endTag()
      let (body, _) = try nodes(until: ["endgeneration"])
      try endTag()
      return body
    case "break":
      try endTag()
      return [.loopBreak]
    case "continue":
      try endTag()
      return [.loopContinue]
    default:
      throw fail("unsupported tag {% \(keyword) %}")
    }
  }
}
