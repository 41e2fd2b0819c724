import AttnaxFormats

/// A post-processor of the HF `tokenizers` format: adds the special tokens around an encoded
/// single sequence (`[CLS] $A [SEP]`, `<s> $A`, ...).
///
/// Supported: `TemplateProcessing` (its `single` template), `BertProcessing`,
/// `RobertaProcessing`, `ByteLevel` (which changes only offsets, so nothing here) and `Sequence`.
indirect enum PostProcessor: Sendable {
  /// The ids before and after the sequence.
  case wrap(prefix: [Int32], suffix: [Int32])
  case sequence([PostProcessor])

  /// Reads a `post_processor` object.
  static func load(_ f: JSONField) throws -> PostProcessor {
    switch try f.typeName() {
    case "TemplateProcessing":
      var specials: [String: [Int32]] = [:]
      if let st = try f.member("special_tokens") {
        for (name, entry) in try st.members() {
          specials[name] = try entry.require("ids").array().map { try $0.tokenID() }
        }
      }
      var prefix: [Int32] = []
      var suffix: [Int32] = []
      var seenSequence = false
      for piece in try f.require("single").array() {
        if let special = try piece.member("SpecialToken") {
          let name = try special.require("id").string()
          guard let ids = specials[name] else {
            throw special.error("\"\(name)\" is not in post_processor.special_tokens")
          }
          if seenSequence { suffix += ids } else { prefix += ids }
        } else if try piece.member("Sequence") != nil {
          guard !seenSequence else { throw piece.error("a single-sequence template holds one sequence") }
          seenSequence = true
        } else {
          throw piece.error("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}")
        }
      }
      return .wrap(prefix: prefix, suffix: suffix)
    case "BertProcessing", "RobertaProcessing":
      // "cls": ["[CLS]", 101], "sep": ["[SEP]", 102]
      func id(_ key: String) throws -> Int32 {
        let pair = try f.require(key).array()
        guard pair.count == 2 else { throw try f.require(key).error("expected [token, id]") }
        return try pair[1].tokenID()
      }
      return .wrap(prefix: [try id("cls")], suffix: [try id("sep")])
    case "ByteLevel":
      return .wrap(prefix: [], suffix: [])
    case "Sequence":
      return .sequence(try f.require("processors").array().map(load))
    case let other:
      throw try f.require("type").error("unsupported post-processor \"\(other)\"")
    }
  }

  /// How many ids `apply` adds.
  var addedCount: Int {
    switch self {
    case let .wrap(prefix, suffix): return prefix.count + suffix.count
    case let .sequence(items): return items.reduce(0) { $0 + $1.addedCount }
    }
  }

  func apply(_ ids: [Int32]) -> [Int32] {
    switch self {
    case let .wrap(prefix, suffix): return prefix + ids + suffix
    case let .sequence(items): return items.reduce(ids) { $1.apply($0) }
    }
  }
}

/// Truncation of an encoded single sequence (`truncation` in tokenizer.json). The length
/// limit counts the special tokens the post-processor adds.
struct Truncation: Sendable {
  var maxLength: Int
  /// Keep the first tokens (`Right`, the default) or the last ones (`Left`).
  var keepFirst: Bool

  static func load(_ f: JSONField) throws -> Truncation {
    let maxLength = try f.require("max_length").int()
    guard maxLength > 0 else { throw try f.require("max_length").error("must be positive") }
    let direction = try f.optionalString("direction") ?? "Right"
    guard direction == "Right" || direction == "Left" else {
      throw try f.require("direction").error("expected \"Right\" or \"Left\"")
    }
    if let stride = try f.optionalInt("stride"), stride != 0 {
      throw try f.require("stride").error("a stride (overflowing windows) is not supported")
    }
    return Truncation(maxLength: maxLength, keepFirst: direction == "Right")
  }

  /// `ids` cut to `maxLength - reserved` tokens.
  func apply(_ ids: [Int32], reserved: Int) -> [Int32] {
    let limit = max(0, maxLength - reserved)
    guard ids.count > limit else { return ids }
    return keepFirst ? Array(ids.prefix(limit)) : Array(ids.suffix(limit))
  }
}
