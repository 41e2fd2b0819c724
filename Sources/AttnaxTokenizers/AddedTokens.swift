import AttnaxFormats

/// A token of `added_tokens`: matched in the text before normalization and pre-tokenization.
public struct AddedToken: Sendable, Equatable {
  /// Its id.
  public var id: Int32
  /// Its text, matched verbatim.
  public var content: String
  /// Special tokens (`<|im_end|>`, `[CLS]`) are matched only when parsing special tokens and
  /// are dropped by `decode(_:skipSpecial: true)`.
  public var special: Bool
  /// Swallow the whitespace on the left of the match.
  public var lstrip: Bool
  /// Swallow the whitespace on the right of the match.
  public var rstrip: Bool
  /// Match only as a whole word (no word character on either side).
  public var singleWord: Bool
}

/// A piece of input text after added tokens have been split out.
enum Fragment {
  case text(String)
  case token(Int32)
}

/// The added tokens and a matcher for them: leftmost-longest over the UTF-8 bytes.
///
/// Every token is matched on the raw text (`normalized: true` tokens too, which is exact for
/// tokenizers whose normalizer leaves the token text unchanged, as for both reference models).
/// llama.cpp matches its special tokens longest-first over the whole text instead; for
/// vocabularies whose special tokens cannot overlap (SmolLM2's all look like `<...>` with no
/// inner `<` or `>`) the two rules give the same cuts.
struct AddedTokens: Sendable {
  let tokens: [AddedToken]
  /// Token indices by first byte, longest first.
  private let byFirstByte: [[Int]]
  private let bytes: [[UInt8]]

  init(_ tokens: [AddedToken]) {
    self.tokens = tokens
    let bytes = tokens.map { Array($0.content.utf8) }
    var table = [[Int]](repeating: [], count: 256)
    for (i, b) in bytes.enumerated() where !b.isEmpty { table[Int(b[0])].append(i) }
    for k in 0..<256 { table[k].sort { bytes[$0].count > bytes[$1].count } }
    self.bytes = bytes
    byFirstByte = table
  }

  /// Reads the `added_tokens` list.
  static func load(_ f: JSONField?) throws -> AddedTokens {
    guard let f else { return AddedTokens([]) }
    var out: [AddedToken] = []
    for t in try f.array() {
      out.append(
        AddedToken(
          id: try t.require("id").tokenID(), content: try t.require("content").string(),
          special: try t.bool("special", default: false),
          lstrip: try t.bool("lstrip", default: false), rstrip: try t.bool("rstrip", default: false),
          singleWord: try t.bool("single_word", default: false)))
    }
    return AddedTokens(out)
  }

  /// Cuts `text` into text and added-token fragments. With `parseSpecial` false only
  /// non-special added tokens are matched.
  func split(_ text: String, parseSpecial: Bool) -> [Fragment] {
    if tokens.isEmpty || text.isEmpty { return [.text(text)] }
    let utf8 = Array(text.utf8)
    var out: [Fragment] = []
    var textStart = 0
    var i = 0
    while i < utf8.count {
      guard let (tokenIndex, length) = match(utf8, at: i, parseSpecial: parseSpecial) else {
        i += 1
        continue
      }
      let token = tokens[tokenIndex]
      var cutLeft = i
      if token.lstrip {
        while cutLeft > textStart, let (s, n) = scalar(utf8, before: cutLeft), CharClass.isWhitespace(s), cutLeft - n >= textStart
        {
          cutLeft -= n
        }
      }
      if cutLeft > textStart { out.append(.text(String(decoding: utf8[textStart..<cutLeft], as: UTF8.self))) }
      out.append(.token(token.id))
      i += length
      if token.rstrip {
        while let (s, n) = scalar(utf8, at: i), CharClass.isWhitespace(s) { i += n }
      }
      textStart = i
    }
    if textStart < utf8.count { out.append(.text(String(decoding: utf8[textStart...], as: UTF8.self))) }
    return out
  }

  private func match(_ utf8: [UInt8], at i: Int, parseSpecial: Bool) -> (Int, Int)? {
    for k in byFirstByte[Int(utf8[i])] {
      let token = tokens[k]
      if token.special && !parseSpecial { continue }
      let b = bytes[k]
      guard i + b.count <= utf8.count else { continue }
      var equal = true
      for j in 1..<b.count where utf8[i + j] != b[j] {
        equal = false
        break
      }
      guard equal else { continue }
      if token.singleWord, !isWordBoundary(utf8, before: i) || !isWordBoundary(utf8, after: i + b.count) { continue }
      return (k, b.count)
    }
    return nil
  }

  private func isWordBoundary(_ utf8: [UInt8], before i: Int) -> Bool {
    guard let (s, _) = scalar(utf8, before: i) else { return true }
    return !CharClass.isWordChar(s)
  }

  private func isWordBoundary(_ utf8: [UInt8], after i: Int) -> Bool {
    guard let (s, _) = scalar(utf8, at: i) else { return true }
    return !CharClass.isWordChar(s)
  }

  /// The character starting at byte `i` and its length in bytes (valid UTF-8 input).
  private func scalar(_ utf8: [UInt8], at i: Int) -> (Unicode.Scalar, Int)? {
    guard i < utf8.count else { return nil }
    let lead = utf8[i]
    let n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
    guard i + n <= utf8.count, let s = String(decoding: utf8[i..<(i + n)], as: UTF8.self).unicodeScalars.first else { return nil }
    return (s, n)
  }

  /// The character ending just before byte `i` and its length in bytes.
  private func scalar(_ utf8: [UInt8], before i: Int) -> (Unicode.Scalar, Int)? {
    guard i > 0 else { return nil }
    var start = i - 1
    while start > 0, utf8[start] & 0xC0 == 0x80 { start -= 1 }
    guard let s = String(decoding: utf8[start..<i], as: UTF8.self).unicodeScalars.first else { return nil }
    return (s, i - start)
  }
}
