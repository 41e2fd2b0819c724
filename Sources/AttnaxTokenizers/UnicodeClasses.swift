/// The character classes the tokenizers use, defined as the reference engines define them,
/// including the Unicode version of their tables (Swift's own tables are newer):
///
/// - Letters and numbers (byte-level BPE): general categories L* and N* as of Unicode 15.1,
///   the version of llama.cpp's `unicode-data.cpp`; characters assigned later count as
///   unassigned there (neither letter, number nor space), so they do here.
/// - Whitespace: the Unicode `White_Space` property (llama.cpp's `unicode_set_whitespace`,
///   Rust's `char::is_whitespace`), which is *not* Python's `str.isspace` (that one adds
///   U+001C...U+001F).
/// - BERT punctuation, control and nonspacing marks: HF `tokenizers` takes them from the
///   `unicode_categories` crate, whose tables are Unicode 8.0: ASCII punctuation or P*
///   (`is_bert_punc`), Cc/Cf/Co but not tab, newline, carriage return (`is_control`), Mn
///   (`strip_accents`), each as of 8.0 (`bertAge`, plus the few characters whose category has
///   changed since, `bertPunctuationExceptions` and `bertMarkExceptions`).
///   Lowercasing and whitespace come from Rust's standard library (current Unicode).
///
/// These rules were checked code point by code point against `tokenizers` 0.23.3 (every
/// scalar through BertNormalizer and BertPreTokenizer) and against llama.cpp through
/// llama-cpp-python 0.3.36.
enum CharClass {
  /// llama.cpp's Unicode version (src/unicode-data.cpp).
  static let llamaCppUnicode = (major: 15, minor: 1)
  /// The Unicode version of the `unicode_categories` crate HF's BERT classes use.
  static let bertUnicode = (major: 8, minor: 0)

  /// Whether `s` was assigned in Unicode `version` or earlier.
  @inline(__always)
  static func assigned(_ s: Unicode.Scalar, by version: (major: Int, minor: Int)) -> Bool {
    guard let age = s.properties.age else { return false }
    return age.major < version.major || (age.major == version.major && age.minor <= version.minor)
  }

  /// Characters that were P* in Unicode 8.0 but are not now.
  static let bertPunctuationExceptions: Set<UInt32> = [0x166D, 0x111C9]
  /// Characters whose Mn-ness differs between Unicode 8.0 (true/false) and now.
  static let bertMarkExceptions: [UInt32: Bool] = [
    0x1734: true, 0x1171E: true, 0x1885: false, 0x1886: false, 0xA9BD: false, 0x111C9: false,
  ]

  private static let asciiFlags: [UInt8] = {
    var t = [UInt8](repeating: 0, count: 128)
    for c in 0..<128 {
      let s = Unicode.Scalar(UInt8(c))
      if s.properties.isWhitespace { t[c] |= whitespaceBit }
      if (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) { t[c] |= letterBit }
      if (0x30...0x39).contains(c) { t[c] |= numberBit }
      if (0x21...0x2F).contains(c) || (0x3A...0x40).contains(c) || (0x5B...0x60).contains(c) || (0x7B...0x7E).contains(c) {
        t[c] |= punctBit
      }
    }
    return t
  }()
  private static let whitespaceBit: UInt8 = 1
  private static let letterBit: UInt8 = 2
  private static let numberBit: UInt8 = 4
  private static let punctBit: UInt8 = 8

  @inline(__always)
  static func isLetter(_ s: Unicode.Scalar) -> Bool {
    if s.value < 128 { return asciiFlags[Int(s.value)] & letterBit != 0 }
    switch s.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
      return assigned(s, by: llamaCppUnicode)
    default: return false
    }
  }

  @inline(__always)
  static func isNumber(_ s: Unicode.Scalar) -> Bool {
    if s.value < 128 { return asciiFlags[Int(s.value)] & numberBit != 0 }
    switch s.properties.generalCategory {
    case .decimalNumber, .letterNumber, .otherNumber: return assigned(s, by: llamaCppUnicode)
    default: return false
    }
  }

  @inline(__always)
  static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
    if s.value < 128 { return asciiFlags[Int(s.value)] & whitespaceBit != 0 }
    return s.properties.isWhitespace
  }

  /// HF's `is_bert_punc`: ASCII punctuation (which includes `$+<=>^`|~`) or category P*
  /// (as of Unicode 8.0).
  static func isBertPunctuation(_ s: Unicode.Scalar) -> Bool {
    if s.value < 128 { return asciiFlags[Int(s.value)] & punctBit != 0 }
    switch s.properties.generalCategory {
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
      .initialPunctuation, .finalPunctuation, .otherPunctuation:
      return assigned(s, by: bertUnicode)
    default: return bertPunctuationExceptions.contains(s.value)
    }
  }

  /// HF BertNormalizer's `is_control`: Cc, Cf or Co (as of Unicode 8.0), but not tab,
  /// newline or carriage return.
  static func isBertControl(_ s: Unicode.Scalar) -> Bool {
    if s == "\t" || s == "\n" || s == "\r" { return false }
    switch s.properties.generalCategory {
    case .control, .format, .privateUse: return assigned(s, by: bertUnicode)
    default: return false
    }
  }

  /// A nonspacing mark (Mn) as of Unicode 8.0: what BERT's accent stripping removes.
  static func isBertNonspacingMark(_ s: Unicode.Scalar) -> Bool {
    if s.value < 0x300 { return false }
    if let exception = bertMarkExceptions[s.value] { return exception }
    return s.properties.generalCategory == .nonspacingMark && assigned(s, by: bertUnicode)
  }

  /// HF BertNormalizer's `is_whitespace`: tab, newline, carriage return or White_Space.
  static func isBertWhitespace(_ s: Unicode.Scalar) -> Bool {
    s == "\t" || s == "\n" || s == "\r" || isWhitespace(s)
  }

  /// The CJK ideograph blocks BERT puts spaces around (HF's ranges, including its
  /// 0x2B920 start for extension E).
  static func isChineseChar(_ s: Unicode.Scalar) -> Bool {
    switch s.value {
    case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
      0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
      return true
    default: return false
    }
  }

  /// Python's `str.isspace` (what Jinja's `trim` and `str.strip()` remove).
  static func isPythonSpace(_ s: Unicode.Scalar) -> Bool {
    switch s.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
      return true
    default: return false
    }
  }

  /// A "word" character for added tokens' `single_word` (Rust regex `\w`: alphanumeric or `_`).
  static func isWordChar(_ s: Unicode.Scalar) -> Bool {
    s == "_" || isLetter(s) || isNumber(s) || s.properties.generalCategory == .nonspacingMark
      || s.properties.generalCategory == .spacingMark || s.properties.generalCategory == .connectorPunctuation
  }
}
