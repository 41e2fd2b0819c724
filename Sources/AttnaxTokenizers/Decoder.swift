import AttnaxFormats

/// A decoder of the HF `tokenizers` format: turns token strings back into text.
///
/// As in HF, decoders work on the list of token strings (`decodeChain`) and the text is the
/// concatenation of the result. Supported: `ByteLevel`, `WordPiece`, `Metaspace`, `BPEDecoder`,
/// `ByteFallback`, `Fuse`, `Strip`, `Replace` (literal patterns) and `Sequence`.
indirect enum Decoder: Sendable {
  case byteLevel
  case wordPiece(prefix: String, cleanup: Bool)
  case metaspace(replacement: String, stripFirstSpace: Bool)
  case bpe(suffix: String)
  case byteFallback
  case fuse
  case strip(content: Unicode.Scalar, start: Int, stop: Int)
  case replace(pattern: String, content: String)
  case sequence([Decoder])

  /// Reads a `decoder` object.
  static func load(_ f: JSONField) throws -> Decoder {
    switch try f.typeName() {
    case "ByteLevel": return .byteLevel
    case "WordPiece":
      return .wordPiece(prefix: try f.optionalString("prefix") ?? "##", cleanup: try f.bool("cleanup", default: true))
    case "Metaspace":
      let replacement = try f.optionalString("replacement") ?? "\u{2581}"
      let scheme = try f.optionalString("prepend_scheme")
      let addPrefix = try f.bool("add_prefix_space", default: true)
      return .metaspace(replacement: replacement, stripFirstSpace: scheme.map { $0 != "never" } ?? addPrefix)
    case "BPEDecoder": return .bpe(suffix: try f.optionalString("suffix") ?? "</w>")
    case "ByteFallback": return .byteFallback
    case "Fuse": return .fuse
    case "Strip":
      let content = try f.require("content").string()
      guard let c = content.unicodeScalars.first, content.unicodeScalars.count == 1 else {
        throw try f.require("content").error("expected one character")
      }
      return .strip(content: c, start: try f.optionalInt("start") ?? 0, stop: try f.optionalInt("stop") ?? 0)
    case "Replace":
      let p = try f.require("pattern")
      guard let literal = try p.optionalString("String") else { throw p.error("only {\"String\": ...} patterns are supported") }
      return .replace(pattern: literal, content: try f.require("content").string())
    case "Sequence": return .sequence(try f.require("decoders").array().map(load))
    case let other:
      throw try f.require("type").error("unsupported decoder \"\(other)\"")
    }
  }

  /// HF's `decode_chain`: the decoded pieces of `tokens`, in order.
  func decodeChain(_ tokens: [String]) -> [String] {
    switch self {
    case let .sequence(items):
      return items.reduce(tokens) { $1.decodeChain($0) }
    case .byteLevel:
      var bytes: [UInt8] = []
      for t in tokens { bytes += ByteLevel.bytes(ofToken: t) }
      return [String(decoding: bytes, as: UTF8.self)]
    case let .wordPiece(prefix, cleanup):
      return tokens.enumerated().map { i, t in
        Decoder.wordPiecePiece(t, index: i, prefix: prefix, cleanup: cleanup)
      }
    case let .metaspace(replacement, stripFirstSpace):
      return tokens.enumerated().map { i, t in
        let s = t.replacingScalars(replacement, with: " ")
        return i == 0 && stripFirstSpace && s.hasScalarPrefix(" ") ? s.droppingScalars(1) : s
      }
    case let .bpe(suffix):
      return tokens.enumerated().map { i, t in
        t.replacingScalars(suffix, with: i == tokens.count - 1 ? "" : " ")
      }
    case .byteFallback:
      var out: [String] = []
      var pending: [UInt8] = []
      func flush() {
        guard !pending.isEmpty else { return }
        if let s = String(validating: pending, as: UTF8.self) {
          out.append(s)
        } else {
          out += Array(repeating: "\u{FFFD}", count: pending.count)
        }
        pending = []
      }
      for t in tokens {
        if let b = Decoder.fallbackByte(t) {
          pending.append(b)
        } else {
          flush()
          out.append(t)
        }
      }
      flush()
      return out
    case .fuse:
      return [tokens.joined()]
    case let .strip(content, start, stop):
      return tokens.map { t in
        var scalars = Array(t.unicodeScalars)
        var a = 0
        while a < start, a < scalars.count, scalars[a] == content { a += 1 }
        var b = 0
        while b < stop, b < scalars.count - a, scalars[scalars.count - 1 - b] == content { b += 1 }
        scalars = Array(scalars[a..<(scalars.count - b)])
        return String(String.UnicodeScalarView(scalars))
      }
    case let .replace(pattern, content):
      return tokens.map { $0.replacingScalars(pattern, with: content) }
    }
  }

  /// One WordPiece token as decoded at position `index` (HF: a `##` piece joins the previous
  /// word, any other piece after the first gets a leading space, then the cleanup rules).
  static func wordPiecePiece(_ token: String, index: Int, prefix: String, cleanup: Bool) -> String {
    var t = token
    if index != 0 {
      if !prefix.isEmpty, t.hasScalarPrefix(prefix) {
        t = t.droppingScalars(prefix.unicodeScalars.count)
      } else {
        t = " " + t
      }
    }
    if cleanup {
      for (a, b) in [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
        (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
      ] {
        t = t.replacingScalars(a, with: b)
      }
    }
    return t
  }

  /// The byte of a `<0xXX>` token.
  static func fallbackByte(_ t: String) -> UInt8? {
    let u = Array(t.utf8)
    guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
    return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
  }

  /// Whether decoding is GPT-2 byte-level at heart (ByteLevel, alone or with no-op companions),
  /// so a streaming decoder may work on bytes.
  var isPlainByteLevel: Bool {
    switch self {
    case .byteLevel: return true
    case let .sequence(items): return items.count == 1 && items[0].isPlainByteLevel
    default: return false
    }
  }

  /// The WordPiece parameters when this decoder is WordPiece alone.
  var wordPieceParameters: (prefix: String, cleanup: Bool)? {
    switch self {
    case let .wordPiece(prefix, cleanup): return (prefix, cleanup)
    case let .sequence(items) where items.count == 1: return items[0].wordPieceParameters
    default: return nil
    }
  }
}
