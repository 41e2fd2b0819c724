import AttnaxFormats

/// A JSON value with its path in its file, for typed reads whose errors name the field
/// (`tokenizer.json: model.merges[12]: expected a string, found a number`).
struct JSONField {
  let value: JSONValue
  /// The JSON path, e.g. `model.merges[12]`; empty for the document root.
  let path: String
  /// The file name used in errors.
  let file: String

  init(_ value: JSONValue, path: String = "", file: String) {
    self.value = value
    self.path = path
    self.file = file
  }

  func error(_ message: String) -> TokenizerError {
    TokenizerError(file: file, field: path, message: message)
  }

  func childPath(_ key: String) -> String {
    let plain =
      !key.isEmpty
      && key.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || $0 == "_" || ("0"..."9").contains($0)) }
    let part = plain ? key : "[\"\(key)\"]"
    if path.isEmpty { return plain ? part : "$" + part }
    return plain ? "\(path).\(part)" : path + part
  }

  /// The member `key`, or nil when it is missing or null. Throws when this is not an object.
  func member(_ key: String) throws -> JSONField? {
    guard case .object = value else { throw error("expected an object, found \(value.kindName)") }
    guard let v = value[key], v != .null else { return nil }
    return JSONField(v, path: childPath(key), file: file)
  }

  /// The member `key`; throws when it is missing.
  func require(_ key: String) throws -> JSONField {
    guard let f = try member(key) else {
      throw TokenizerError(file: file, field: childPath(key), message: "missing")
    }
    return f
  }

  func string() throws -> String {
    guard case let .string(s) = value else { throw error("expected a string, found \(value.kindName)") }
    return s
  }

  func bool() throws -> Bool {
    guard case let .bool(b) = value else { throw error("expected true or false, found \(value.kindName)") }
    return b
  }

  func int() throws -> Int {
    switch value {
    case let .int(v) where v >= Int64(Int32.min) && v <= Int64(Int32.max): return Int(v)
    case let .double(d) where d == d.rounded() && abs(d) <= Double(Int32.max): return Int(d)
    case .int, .double: throw error("number out of range")
    default: throw error("expected an integer, found \(value.kindName)")
    }
  }

  /// A token id: an integer in 0..<2^31.
  func tokenID() throws -> Int32 {
    let v = try int()
    guard v >= 0 else { throw error("token id \(v) is negative") }
    return Int32(v)
  }

  func array() throws -> [JSONField] {
    guard case let .array(items) = value else { throw error("expected a list, found \(value.kindName)") }
    return items.enumerated().map { JSONField($1, path: "\(path)[\($0)]", file: file) }
  }

  func members() throws -> [(key: String, field: JSONField)] {
    guard case let .object(members) = value else { throw error("expected an object, found \(value.kindName)") }
    return members.map { ($0.key, JSONField($0.value, path: childPath($0.key), file: file)) }
  }

  func optionalString(_ key: String) throws -> String? { try member(key)?.string() }

  func bool(_ key: String, default d: Bool) throws -> Bool { try member(key)?.bool() ?? d }

  func optionalInt(_ key: String) throws -> Int? { try member(key)?.int() }

  /// The `type` member of a component (`normalizer`, `pre_tokenizer`, ...).
  func typeName() throws -> String { try require("type").string() }
}
