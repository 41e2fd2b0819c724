import AttnaxFormats

/// A checkpoint's own configuration keys, read one at a time with the type the family expects:
/// a GGUF file's metadata (`qwen2.embedding_length`) or a Hugging Face `config.json`
/// (`hidden_size`). Every failure is one ``AttnaxError`` naming the key and the file.
public struct CheckpointKeys: Sendable {
  enum Storage: Sendable {
    case gguf(GGUFFile)
    case json(JSONValue)
  }
  let storage: Storage
  /// The file the keys come from (for messages).
  public let file: String

  /// The metadata of a GGUF file.
  public init(gguf: GGUFFile) { storage = .gguf(gguf); file = gguf.path }
  /// The members of a config.json object read from `file`.
  public init(json: JSONValue, file: String) { storage = .json(json); self.file = file }

  func wrongType(_ key: String, _ expected: String, found: String) -> AttnaxError {
    .config(field: key, message: "is \(found), expected \(expected) (in '\(file)')")
  }

  /// Whether the key is present (and, in JSON, not null).
  public func contains(_ key: String) -> Bool {
    switch storage {
    case let .gguf(f): return f.metadata[key] != nil
    case let .json(j): return j[key].map { $0 != .null } ?? false
    }
  }

  /// An integer key, or nil when absent.
  public func int(_ key: String) throws -> Int? {
    switch storage {
    case let .gguf(f): return try f.int(key)
    case let .json(j):
      guard let v = j[key], v != .null else { return nil }
      guard case let .int(i) = v, let n = Int(exactly: i) else { throw wrongType(key, "an integer", found: v.kindName) }
      return n
    }
  }

  /// A number key, or nil when absent.
  public func double(_ key: String) throws -> Double? {
    switch storage {
    case let .gguf(f): return try f.double(key)
    case let .json(j):
      guard let v = j[key], v != .null else { return nil }
      switch v {
      case let .int(i): return Double(i)
      case let .double(d): return d
      default: throw wrongType(key, "a number", found: v.kindName)
      }
    }
  }

  /// A string key, or nil when absent.
  public func string(_ key: String) throws -> String? {
    switch storage {
    case let .gguf(f): return try f.string(key)
    case let .json(j):
      guard let v = j[key], v != .null else { return nil }
      guard case let .string(s) = v else { throw wrongType(key, "a string", found: v.kindName) }
      return s
    }
  }

  /// A boolean key, or nil when absent.
  public func bool(_ key: String) throws -> Bool? {
    switch storage {
    case let .gguf(f): return try f.bool(key)
    case let .json(j):
      guard let v = j[key], v != .null else { return nil }
      guard case let .bool(b) = v else { throw wrongType(key, "true or false", found: v.kindName) }
      return b
    }
  }

  /// A required integer of at least `minimum`.
  public func count(_ key: String, minimum: Int = 1) throws -> Int {
    guard let n = try int(key) else { throw AttnaxError.config(field: key, message: "missing from '\(file)'") }
    guard n >= minimum else { throw AttnaxError.config(field: key, message: "\(n) is below \(minimum) (in '\(file)')") }
    return n
  }

  /// A finite positive number, `fallback` when absent.
  public func positive(_ key: String, default fallback: Double) throws -> Double {
    guard let x = try double(key) else { return fallback }
    guard x.isFinite, x > 0 else { throw AttnaxError.config(field: key, message: "\(x) is not a positive number (in '\(file)')") }
    return x
  }

  /// Refuses `key` when it is present with a value other than the ones listed (features the
  /// runtime does not model: RoPE scaling, sliding windows, mixture of experts, ...).
  public func refuse(_ key: String, unless allowed: [Double] = [0, 1], _ what: String) throws {
    guard contains(key) else { return }
    if case let .json(j) = storage, let v = j[key], case .object = v {
      throw AttnaxError.config(field: key, message: "\(what) is not modelled (in '\(file)')")
    }
    if let s = try? string(key) {
      guard s.isEmpty || s == "none" else {
        throw AttnaxError.config(field: key, message: "'\(s)': \(what) is not modelled (in '\(file)')")
      }
      return
    }
    if let b = try? bool(key) {
      guard !b else { throw AttnaxError.config(field: key, message: "\(what) is not modelled (in '\(file)')") }
      return
    }
    if let x = try double(key), !allowed.contains(x) {
      throw AttnaxError.config(field: key, message: "\(x): \(what) is not modelled (in '\(file)')")
    }
  }
}
