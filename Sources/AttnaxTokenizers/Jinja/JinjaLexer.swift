/// A token of a Jinja template.
enum JinjaToken: Equatable {
  case text(String)
  case variableBegin, variableEnd, blockBegin, blockEnd
  case name(String)
  case string(String)
  case int(Int)
  case float(Double)
  case op(String)
  case eof
}

/// Cuts a template into tokens with Jinja2's whitespace rules as Hugging Face configures them
/// (`trim_blocks=True`, `lstrip_blocks=True`, `keep_trailing_newline=False`):
///
/// - Newlines (`\r\n`, `\r`, `\n`) in the source become `\n`, and one trailing newline is dropped.
/// - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` all after it.
/// - trim_blocks: a newline right after `%}` or `#}` is dropped (`+%}` keeps it).
/// - lstrip_blocks: spaces and tabs between the start of a line and `{%` or `{#` are dropped
///   (`{%+` keeps them); `{{` is never lstripped.
struct JinjaLexer {
  private let s: [Unicode.Scalar]
  private var i = 0
  private var line = 1
  private(set) var tokens: [(token: JinjaToken, line: Int)] = []

  init(_ source: String) {
    var scalars: [Unicode.Scalar] = []
    scalars.reserveCapacity(source.unicodeScalars.count)
    var it = source.unicodeScalars.makeIterator()
    var pendingCR = false
    while let c = it.next() {
      if pendingCR {
        pendingCR = false
        if c == "\n" { continue }
      }
      if c == "\r" {
        scalars.append("\n")
        pendingCR = true
      } else {
        scalars.append(c)
      }
    }
    if scalars.last == "\n" { scalars.removeLast() }
    s = scalars
  }

  static func tokenize(_ source: String) throws -> [(token: JinjaToken, line: Int)] {
    var lexer = JinjaLexer(source)
    try lexer.run()
    return lexer.tokens
  }

  private func at(_ k: Int) -> Unicode.Scalar? { k < s.count ? s[k] : nil }

  private mutating func emit(_ t: JinjaToken) { tokens.append((t, line)) }

  private mutating func advance(_ n: Int) {
    for k in i..<min(s.count, i + n) where s[k] == "\n" { line += 1 }
    i = min(s.count, i + n)
  }

  private func syntax(_ message: String) -> ChatTemplateError { .syntax(line: line, message: message) }

  private mutating func run() throws {
    var lineStarting = true
    while i < s.count {
      // The next tag opener.
      var p = i
      var kind: Unicode.Scalar? = nil
      while p + 1 < s.count {
        if s[p] == "{", let k = at(p + 1), k == "{" || k == "%" || k == "#" {
          kind = k
          break
        }
        p += 1
      }
      guard let kind else {
        emitText(s[i...])
        advance(s.count - i)
        break
      }
      var text = s[i..<p]
      let modifier = at(p + 2).flatMap { $0 == "-" || $0 == "+" ? $0 : nil }
      if modifier == "-" {
        while let last = text.last, CharClass.isPythonSpace(last) { text = text.dropLast() }
      } else if modifier != "+", kind != "{" {
        let lineStart = text.lastIndex(of: "\n").map { $0 + 1 } ?? text.startIndex
        if lineStart > text.startIndex || lineStarting {
          let rest = text[lineStart...]
          if !rest.isEmpty, rest.allSatisfy(CharClass.isPythonSpace) { text = text[..<lineStart] }
        }
      }
      emitText(text)
      advance(p - i)
      advance(2 + (modifier == nil ? 0 : 1))
      let consumedStart = i
      switch kind {
      case "#":
        try skipComment()
      case "%":
        emit(.blockBegin)
        try expressionTokens(closer: "%")
        emit(.blockEnd)
      default:
        emit(.variableBegin)
        try expressionTokens(closer: "}")
        emit(.variableEnd)
      }
      lineStarting = i > consumedStart && s[i - 1] == "\n"
    }
    emit(.eof)
  }

  private mutating func emitText(_ t: ArraySlice<Unicode.Scalar>) {
    guard !t.isEmpty else { return }
    var u = String.UnicodeScalarView()
    u.append(contentsOf: t)
    emit(.text(String(u)))
  }

  /// After a closing `%}` / `#}` (trim_blocks) or `-X}` (strip all).
  private mutating func afterClose(minus: Bool, plus: Bool, isBlock: Bool) {
    if minus {
      while let c = at(i), CharClass.isPythonSpace(c) { advance(1) }
    } else if !plus, isBlock, at(i) == "\n" {
      advance(1)
    }
  }

  private mutating func skipComment() throws {
    while i + 1 < s.count {
      if s[i] == "#", s[i + 1] == "}" {
        let minus = i > 0 && s[i - 1] == "-"
        let plus = i > 0 && s[i - 1] == "+"
        advance(2)
        afterClose(minus: minus, plus: plus, isBlock: true)
        return
      }
      advance(1)
    }
    throw syntax("unterminated comment")
  }

  /// Expression tokens up to the closing `%}` (closer `%`) or `}}` (closer `}`).
  private mutating func expressionTokens(closer: Unicode.Scalar) throws {
    var depth = 0
    while true {
      while let c = at(i), c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0B}" || c == "\u{0C}" { advance(1) }
      guard let c = at(i) else { throw syntax(closer == "%" ? "missing %}" : "missing }}") }
      if depth == 0 {
        if (c == "-" || (c == "+" && closer == "%")), at(i + 1) == closer, at(i + 2) == "}" {
          advance(3)
          afterClose(minus: c == "-", plus: c == "+", isBlock: closer == "%")
          return
        }
        if c == closer, at(i + 1) == "}" {
          advance(2)
          afterClose(minus: false, plus: false, isBlock: closer == "%")
          return
        }
      }
      if c == "_" || CharClass.isLetter(c) && c.isASCII {
        var name = String.UnicodeScalarView()
        while let d = at(i), d == "_" || (d.isASCII && (CharClass.isLetter(d) || CharClass.isNumber(d))) {
          name.append(d)
          advance(1)
        }
        emit(.name(String(name)))
      } else if c.isASCII && CharClass.isNumber(c) {
        try number()
      } else if c == "'" || c == "\"" {
        emit(.string(try stringLiteral(quote: c)))
      } else {
        let two = at(i + 1).map { String(c) + String($0) } ?? ""
        if ["//", "**", "==", "!=", "<=", ">="].contains(two) {
          emit(.op(two))
          advance(2)
        } else if "+-*/%~<>=()[]{},.:|;".unicodeScalars.contains(c) {
          if "([{".unicodeScalars.contains(c) { depth += 1 }
          if ")]}".unicodeScalars.contains(c) { depth = max(0, depth - 1) }
          emit(.op(String(c)))
          advance(1)
        } else {
          throw syntax("unexpected character \"\(c)\"")
        }
      }
    }
  }

  private mutating func number() throws {
    var text = ""
    var isFloat = false
    while let d = at(i), d.isASCII && CharClass.isNumber(d) || d == "_" {
      if d != "_" { text.unicodeScalars.append(d) }
      advance(1)
    }
    if at(i) == ".", let d = at(i + 1), d.isASCII && CharClass.isNumber(d) {
      isFloat = true
      text += "."
      advance(1)
      while let d = at(i), d.isASCII && CharClass.isNumber(d) || d == "_" {
        if d != "_" { text.unicodeScalars.append(d) }
        advance(1)
      }
    }
    if let e = at(i), e == "e" || e == "E" {
      var k = i + 1
      if let sign = at(k), sign == "+" || sign == "-" { k += 1 }
      if let d = at(k), d.isASCII && CharClass.isNumber(d) {
        isFloat = true
        text += "e"
        advance(1)
        while let d = at(i), d == "+" || d == "-" || (d.isASCII && CharClass.isNumber(d)) {
          text.unicodeScalars.append(d)
          advance(1)
        }
      }
    }
    if isFloat {
      guard let v = Double(text) else { throw syntax("bad number \(text)") }
      emit(.float(v))
    } else {
      guard let v = Int(text) else { throw syntax("integer \(text) out of range") }
      emit(.int(v))
    }
  }

  /// A quoted string with Python's escapes (`\n`, `\t`, `\\`, `\'`, `\xhh`, `\uhhhh`, ...).
  private mutating func stringLiteral(quote: Unicode.Scalar) throws -> String {
    advance(1)
    var out = String.UnicodeScalarView()
    while true {
      guard let c = at(i) else { throw syntax("unterminated string") }
      advance(1)
      if c == quote { break }
      guard c == "\\" else {
        out.append(c)
        continue
      }
      guard let e = at(i) else { throw syntax("unterminated string") }
      advance(1)
      switch e {
      case "n": out.append("\n")
      case "t": out.append("\t")
      case "r": out.append("\r")
      case "\\": out.append("\\")
      case "'": out.append("'")
      case "\"": out.append("\"")
      case "a": out.append("\u{07}")
      case "b": out.append("\u{08}")
      case "f": out.append("\u{0C}")
      case "v": out.append("\u{0B}")
      case "0": out.append("\u{00}")
      case "\n": break
      case "x", "u", "U":
        let n = e == "x" ? 2 : e == "u" ? 4 : 8
        guard i + n <= s.count, let v = UInt32(String(String.UnicodeScalarView(s[i..<(i + n)])), radix: 16),
          let scalar = Unicode.Scalar(v)
        else { throw syntax("bad \\\(e) escape") }
        out.append(scalar)
        advance(n)
      default:
        // Python keeps unknown escapes as written.
        out.append("\\")
        out.append(e)
      }
    }
    return String(out)
  }
}
