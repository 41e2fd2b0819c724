import AttnaxFormats

/// A pattern a `Split` pre-tokenizer cuts at.
enum SplitPattern: Sendable {
  /// A literal string (`{"String": "..."}`).
  case literal([Unicode.Scalar])
  /// GPT-2's regex, implemented by hand (`Splitters.gpt2`).
  case gpt2
  /// The Llama-3 / Qwen2 regex family, implemented by hand (`Splitters.llama3`).
  case llama3(maxDigits: Int)

  static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
  static let gpt2RegexLlamaCpp = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#
  static let llama3Regex =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
  static let qwen2Regex =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

  /// The hand-written splitter for a regex, if there is one.
  static func known(regex: String) -> SplitPattern? {
    switch regex {
    case gpt2Regex, gpt2RegexLlamaCpp: return .gpt2
    case llama3Regex: return .llama3(maxDigits: 3)
    case qwen2Regex: return .llama3(maxDigits: 1)
    default: return nil
    }
  }

  func matches(_ s: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
    switch self {
    case let .literal(needle): return Splitters.literal(s, needle)
    case .gpt2: return Splitters.gpt2(s)
    case let .llama3(maxDigits): return Splitters.llama3(s, maxDigits: maxDigits)
    }
  }
}

/// A pre-tokenizer of the HF `tokenizers` format: it cuts normalized text into the words the
/// model encodes one at a time.
///
/// Supported: `ByteLevel` (GPT-2 regex and byte → character map), `Digits`, `Split` (literal
/// patterns and the GPT-2 / Llama-3 / Qwen2 regexes), `BertPreTokenizer`, `WhitespaceSplit`,
/// `Whitespace`, `Punctuation` and `Sequence`. Any other type is a load error.
indirect enum PreTokenizer: Sendable {
  case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
  case digits(individual: Bool)
  case split(pattern: SplitPattern, behavior: SplitBehavior, invert: Bool)
  case bert
  case whitespaceSplit
  /// `\w+|[^\w\s]+`.
  case whitespace
  case punctuation(SplitBehavior)
  case sequence([PreTokenizer])

  /// Reads a `pre_tokenizer` object.
  static func load(_ f: JSONField) throws -> PreTokenizer {
    switch try f.typeName() {
    case "ByteLevel":
      return .byteLevel(
        addPrefixSpace: try f.bool("add_prefix_space", default: true), useRegex: try f.bool("use_regex", default: true))
    case "Digits":
      return .digits(individual: try f.bool("individual_digits", default: false))
    case "Split":
      let p = try f.require("pattern")
      let pattern: SplitPattern
      if let literal = try p.optionalString("String") {
        pattern = .literal(Array(literal.unicodeScalars))
      } else if let regex = try p.optionalString("Regex") {
        guard let known = SplitPattern.known(regex: regex) else {
          throw p.error("unsupported regex \(regex) (supported: the GPT-2, Llama-3 and Qwen2 patterns)")
        }
        pattern = known
      } else {
        throw p.error("expected {\"String\": ...} or {\"Regex\": ...}")
      }
      return .split(pattern: pattern, behavior: try behavior(f.require("behavior")), invert: try f.bool("invert", default: false))
    case "BertPreTokenizer": return .bert
    case "WhitespaceSplit": return .whitespaceSplit
    case "Whitespace": return .whitespace
    case "Punctuation":
      return .punctuation(try f.member("behavior").map(behavior) ?? .isolated)
    case "Sequence":
      return .sequence(try f.require("pretokenizers").array().map(load))
    case let other:
      throw try f.require("type").error("unsupported pre-tokenizer \"\(other)\"")
    }
  }

  private static func behavior(_ f: JSONField) throws -> SplitBehavior {
    let name = try f.string()
    guard let b = SplitBehavior(rawValue: name) else { throw f.error("unknown split behavior \"\(name)\"") }
    return b
  }

  /// Cuts every piece further.
  func apply(_ pieces: [[Unicode.Scalar]]) -> [[Unicode.Scalar]] {
    switch self {
    case let .sequence(items):
      return items.reduce(pieces) { $1.apply($0) }
    case let .byteLevel(addPrefixSpace, useRegex):
      var out: [[Unicode.Scalar]] = []
      out.reserveCapacity(pieces.count * 2)
      for var piece in pieces {
        if addPrefixSpace, piece.first != " " { piece.insert(" ", at: 0) }
        if useRegex {
          let slice = piece[...]
          for r in Splitters.gpt2(slice) { out.append(ByteLevel.encode(slice[r])) }
        } else {
          out.append(ByteLevel.encode(piece[...]))
        }
      }
      return out
    default:
      var out: [[Unicode.Scalar]] = []
      out.reserveCapacity(pieces.count * 2)
      for piece in pieces {
        let slice = piece[...]
        for r in ranges(slice) where !r.isEmpty { out.append(Array(slice[r])) }
      }
      return out
    }
  }

  /// The pieces of one input piece, for the splitting (non-mapping) pre-tokenizers.
  private func ranges(_ s: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
    switch self {
    case let .digits(individual):
      return SplitBehavior.isolated.apply(s, matches: Splitters.digits(s, individual: individual))
    case let .split(pattern, behavior, invert):
      return behavior.apply(s, matches: pattern.matches(s), invert: invert)
    case .bert:
      let words = SplitBehavior.removed.apply(s, matches: Splitters.characters(s, where: CharClass.isWhitespace))
      return words.flatMap { w in
        SplitBehavior.isolated.apply(s[w], matches: Splitters.characters(s[w], where: CharClass.isBertPunctuation))
      }
    case .whitespaceSplit:
      return SplitBehavior.removed.apply(s, matches: Splitters.characters(s, where: CharClass.isWhitespace))
    case .whitespace:
      // \w+|[^\w\s]+ : runs of word characters and runs of other non-space characters.
      var out: [Range<Int>] = []
      var i = s.startIndex
      while i < s.endIndex {
        if CharClass.isWhitespace(s[i]) { i += 1; continue }
        let word = CharClass.isWordChar(s[i])
        let start = i
        while i < s.endIndex, !CharClass.isWhitespace(s[i]), CharClass.isWordChar(s[i]) == word { i += 1 }
        out.append(start..<i)
      }
      return out
    case let .punctuation(behavior):
      return behavior.apply(s, matches: Splitters.characters(s, where: CharClass.isBertPunctuation))
    case .byteLevel, .sequence:
      return [s.startIndex..<s.endIndex]
    }
  }
}
