import AttnaxFormats

/// Typed reads of a GGUF file's `tokenizer.*` metadata whose errors name the file and the key
/// (`model.gguf: tokenizer.ggml.merges[7]: not a string`), as scripts/reference/gguf_tokenizer.py reads
/// them with the `gguf` package.
///
/// A missing key reads as nil (or, for a required one, "missing"); a value of the wrong kind is
/// an error naming the kind found. Token texts quoted in messages go through
/// `Escaping.shown`, so an error stays one line whatever the file holds.
struct GGUFMetadataFields {
  /// The metadata, by key.
  let metadata: [String: GGUFValue]
  /// The file the metadata came from, for messages.
  let file: String

  /// An error about `key`.
  func error(_ key: String, _ message: String) -> TokenizerError {
    TokenizerError(file: file, field: key, message: message)
  }

  /// Whether `key` is present (whatever its value).
  func has(_ key: String) -> Bool { metadata[key] != nil }

  /// The string at `key`; nil when absent.
  func string(_ key: String) throws -> String? {
    guard let value = metadata[key] else { return nil }
    guard case let .string(s) = value else { throw error(key, "expected a string, found \(value.typeName)") }
    return s
  }

  /// The array of strings at `key`.
  /// - Throws: "missing" when absent, or naming the first element that is not a string.
  func strings(_ key: String) throws -> [String] {
    guard let value = metadata[key] else { throw error(key, "missing") }
    guard case let .array(items) = value else { throw error(key, "expected an array of strings, found \(value.typeName)") }
    var out: [String] = []
    out.reserveCapacity(items.count)
    for (i, item) in items.enumerated() {
      guard case let .string(s) = item else { throw error("\(key)[\(i)]", "not a string (\(item.typeName))") }
      out.append(s)
    }
    return out
  }

  /// The array of integers at `key`; nil when absent.
  func integers(_ key: String) throws -> [Int]? {
    guard let value = metadata[key] else { return nil }
    guard case let .array(items) = value else { throw error(key, "expected a list of integers, found \(value.typeName)") }
    var out: [Int] = []
    out.reserveCapacity(items.count)
    for (i, item) in items.enumerated() {
      guard let v = item.intValue else {
        let found = item.isInteger ? Self.integerText(item) + ", out of range" : item.typeName
        throw error("\(key)[\(i)]", "expected an integer, found \(found)")
      }
      out.append(v)
    }
    return out
  }

  /// The token id at `key`, checked against a vocabulary of `count` tokens; nil when absent.
  ///
  /// llama.cpp warns about an id outside the vocabulary and keeps its default; a bad id is not
  /// worth guessing about here, so it is an error (as in gguf_tokenizer.py).
  func tokenID(_ key: String, count: Int) throws -> Int32? {
    guard let value = metadata[key] else { return nil }
    guard value.isInteger else { throw error(key, "expected an integer, found \(value.typeName)") }
    guard let v = value.intValue, v >= 0, v < count else {
      throw error(key, "\(Self.integerText(value)) is outside the vocabulary (0..\(count - 1))")
    }
    return Int32(v)
  }

  /// The flag at `key` (a bool, or an integer read as nonzero); nil when absent.
  func flag(_ key: String) throws -> Bool? {
    guard let value = metadata[key] else { return nil }
    if case let .bool(b) = value { return b }
    if value.isInteger { return value.intValue != 0 }
    throw error(key, "expected true or false, found \(value.typeName)")
  }

  /// An integer value as written, whatever its width.
  static func integerText(_ value: GGUFValue) -> String {
    switch value {
    case let .uint64(v): return String(v)
    case let .int64(v): return String(v)
    default: return value.intValue.map(String.init) ?? "\(value)"
    }
  }
}
