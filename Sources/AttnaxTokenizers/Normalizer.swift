import AttnaxFormats
import Foundation

/// A normalizer of the HF `tokenizers` format, applied to text before pre-tokenization.
///
/// Supported: `BertNormalizer`, `Lowercase`, `NFC`, `NFD`, `NFKC`, `NFKD`, `StripAccents`,
/// `Strip`, `Replace` (literal patterns), `Prepend` and `Sequence`.
indirect enum Normalizer: Sendable {
  /// BERT's cleaning: `cleanText` drops controls and maps whitespace to spaces,
  /// `handleChineseChars` puts spaces around CJK ideographs, `stripAccents` decomposes (NFD)
  /// and drops nonspacing marks, `lowercase` lowercases.
  case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool, lowercase: Bool)
  case lowercase
  case nfc, nfd, nfkc, nfkd
  case stripAccents
  case strip(left: Bool, right: Bool)
  case replace(pattern: String, content: String)
  case prepend(String)
  case sequence([Normalizer])

  /// Reads a `normalizer` object.
  static func load(_ f: JSONField) throws -> Normalizer {
    switch try f.typeName() {
    case "BertNormalizer":
      let lowercase = try f.bool("lowercase", default: true)
      // strip_accents null means "follow lowercase" (HF and BERT's original code).
      let strip = try f.member("strip_accents")?.bool() ?? lowercase
      return .bert(
        cleanText: try f.bool("clean_text", default: true), handleChineseChars: try f.bool("handle_chinese_chars", default: true),
        stripAccents: strip, lowercase: lowercase)
    case "Lowercase": return .lowercase
    case "NFC": return .nfc
    case "NFD": return .nfd
    case "NFKC": return .nfkc
    case "NFKD": return .nfkd
    case "StripAccents": return .stripAccents
    case "Strip": return .strip(left: try f.bool("strip_left", default: true), right: try f.bool("strip_right", default: true))
    case "Replace":
      let p = try f.require("pattern")
      guard let literal = try p.optionalString("String") else {
        throw p.error("only {\"String\": ...} patterns are supported")
      }
      return .replace(pattern: literal, content: try f.require("content").string())
    case "Prepend": return .prepend(try f.require("prepend").string())
    case "Sequence": return .sequence(try f.require("normalizers").array().map(load))
    case let other:
      throw try f.require("type").error("unsupported normalizer \"\(other)\"")
    }
  }

  /// NFD as HF's BERT normalizer computes it: characters newer than its normalization tables
  /// (Unicode 8.0 era, e.g. U+11938) stay composed.
  static func bertNFD(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: { !$0.isASCII && !CharClass.assigned($0, by: CharClass.bertUnicode) }) else {
      return text.decomposedStringWithCanonicalMapping
    }
    var out = ""
    var segment = String.UnicodeScalarView()
    for s in text.unicodeScalars {
      if !s.isASCII && !CharClass.assigned(s, by: CharClass.bertUnicode) && s.properties.canonicalCombiningClass == .notReordered
      {
        out += String(segment).decomposedStringWithCanonicalMapping
        segment = String.UnicodeScalarView()
        out.unicodeScalars.append(s)
      } else {
        segment.append(s)
      }
    }
    return out + String(segment).decomposedStringWithCanonicalMapping
  }

  /// The normalized form of `text`.
  func apply(_ text: String) -> String {
    switch self {
    case let .sequence(items):
      return items.reduce(text) { $1.apply($0) }
    case let .bert(cleanText, handleChineseChars, stripAccents, lowercase):
      var scalars = String.UnicodeScalarView()
      for s in text.unicodeScalars {
        if cleanText {
          if s.value == 0 || s.value == 0xFFFD || CharClass.isBertControl(s) { continue }
          if CharClass.isBertWhitespace(s) {
            scalars.append(" ")
            continue
          }
        }
        if handleChineseChars && CharClass.isChineseChar(s) {
          scalars.append(" ")
          scalars.append(s)
          scalars.append(" ")
        } else {
          scalars.append(s)
        }
      }
      var out = String(scalars)
      if stripAccents {
        var kept = String.UnicodeScalarView()
        for s in Normalizer.bertNFD(out).unicodeScalars where !CharClass.isBertNonspacingMark(s) { kept.append(s) }
        out = String(kept)
      }
      if lowercase { out = Normalizer.lowercase.apply(out) }
      return out
    case .lowercase:
      // Per character, as Rust's char::to_lowercase (no context-dependent final sigma).
      var scalars = String.UnicodeScalarView()
      for s in text.unicodeScalars {
        if s.isASCII {
          scalars.append(s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(UInt8(s.value + 32)) : s)
        } else {
          scalars.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
        }
      }
      return String(scalars)
    case .nfc: return text.precomposedStringWithCanonicalMapping
    case .nfd: return text.decomposedStringWithCanonicalMapping
    case .nfkc: return text.precomposedStringWithCompatibilityMapping
    case .nfkd: return text.decomposedStringWithCompatibilityMapping
    case .stripAccents:
      // HF's StripAccents only drops marks; it is preceded by an NFD normalizer when needed.
      var scalars = String.UnicodeScalarView()
      for s in text.unicodeScalars where !CharClass.isBertNonspacingMark(s) { scalars.append(s) }
      return String(scalars)
    case let .strip(left, right):
      var s = text.unicodeScalars[...]
      if left { s = s.drop(while: CharClass.isWhitespace) }
      if right { while let last = s.last, CharClass.isWhitespace(last) { s = s.dropLast() } }
      return String(String.UnicodeScalarView(s))
    case let .replace(pattern, content):
      return text.replacingScalars(pattern, with: content)
    case let .prepend(prefix):
      return text.isEmpty ? text : prefix + text
    }
  }
}
