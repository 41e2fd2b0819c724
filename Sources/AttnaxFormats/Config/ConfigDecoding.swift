// Strict, field-naming decoding shared by every config type: unknown keys refused, each
// failure an AttnaxError naming the field (with its path for nested objects).

/// A string coding key for strict, field-naming decoding.
struct AnyKey: CodingKey {
  var stringValue: String
  var intValue: Int? { nil }
  init(_ s: String) { stringValue = s }
  init?(stringValue: String) { self.stringValue = stringValue }
  init?(intValue: Int) { return nil }
}

func decodeField<T: Decodable>(
  _ c: KeyedDecodingContainer<AnyKey>, _ key: String, _ type: T.Type, _ name: (String) -> String
) throws -> T {
  guard c.contains(AnyKey(key)) else { throw AttnaxError.config(field: name(key), message: "missing") }
  do { return try c.decode(T.self, forKey: AnyKey(key)) } catch {
    throw AttnaxError.config(field: name(key), message: "expected \(typeName(T.self))")
  }
}

func decodeEnum<T: RawRepresentable & CaseIterable & Decodable>(
  _ c: KeyedDecodingContainer<AnyKey>, _ key: String, _ type: T.Type
) throws -> T where T.RawValue == String {
  let raw = try decodeField(c, key, String.self, { $0 })
  guard let v = T(rawValue: raw) else {
    let options = T.allCases.map(\.rawValue).joined(separator: ", ")
    throw AttnaxError.config(field: key, message: "unknown value '\(Escaping.shown(raw))' (one of: \(options))")
  }
  return v
}

/// Refuses a key of `c` outside `known`, naming the smallest such key: the decoder's own key
/// order changes from process to process (hash seeding), so the first one it lists would make
/// the message differ between runs and ranks. Keys past 200 characters are shortened (the
/// error's description escapes control characters).
func refuseUnknownKeys(
  _ c: KeyedDecodingContainer<AnyKey>, known: Set<String>, field: (String) -> String = { $0 },
  message: String = "unknown field"
) throws {
  if let key = c.allKeys.lazy.map(\.stringValue).filter({ !known.contains($0) }).min() {
    throw AttnaxError.config(field: field(key.count > 200 ? key.prefix(200) + "..." : key), message: message)
  }
}

private func typeName<T>(_ t: T.Type) -> String {
  switch t {
  case is Int.Type: return "an integer"
  case is Int?.Type: return "an integer or null"
  case is Double.Type: return "a number"
  case is Bool.Type: return "true or false"
  case is String.Type: return "a string"
  case is [Int].Type: return "a list of integers"
  case is [[Int]].Type: return "a list of lists of integers"
  default: return "\(t)"
  }
}

/// An optional key: its value when present (typed, or an error naming it), else `fallback`.
func decodeOptional<T: Decodable>(_ c: KeyedDecodingContainer<AnyKey>, _ key: String, _ fallback: T) throws -> T {
  c.contains(AnyKey(key)) ? try decodeField(c, key, T.self, { $0 }) : fallback
}
