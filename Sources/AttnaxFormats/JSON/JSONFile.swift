import Foundation

/// The one policy for JSON read from files (config.json, meta.json, tokenizer files): the
/// bytes must be strict RFC 8259 (``JSONParser``: no duplicate keys, no trailing commas, valid
/// UTF-8, bounded nesting), then they are decoded into a `Decodable` type whose own decoder
/// names any bad field. Every failure is one ``AttnaxError`` naming the file.
public enum JSONFile {
  /// The file's bytes, checked to be strict JSON.
  public static func read(_ path: String) throws -> Data {
    let data = try contents(path)
    try check(data, path: path)
    return data
  }

  private static func contents(_ path: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw AttnaxError.file(path: path, message: "cannot be read")
    }
    return data
  }

  /// Throws unless `data` is one strict JSON value.
  public static func check(_ data: Data, path: String) throws {
    try data.withUnsafeBytes { raw in
      var parser = JSONParser(bytes: raw)
      do {
        _ = try parser.parseDocument()
      } catch let e as JSONParseError {
        throw AttnaxError.file(path: path, message: "not valid JSON: \(e.message) at byte \(e.offset)")
      }
    }
  }

  /// Reads `path` and decodes it as `T`; errors the type's decoder throws as ``AttnaxError``
  /// pass through, any other decoding failure names the file.
  public static func decode<T: Decodable>(_ type: T.Type, path: String, expected: String = "a JSON object") throws -> T {
    try decode(type, from: contents(path), path: path, expected: expected)
  }

  /// Decodes `data`, the contents of `path`, under the same policy: strict JSON, then the type's
  /// decoder; errors name the field or `path`.
  public static func decode<T: Decodable>(
    _ type: T.Type, from data: Data, path: String, expected: String = "a JSON object"
  ) throws -> T {
    try check(data, path: path)
    do {
      return try JSONDecoder().decode(T.self, from: data)
    } catch let e as AttnaxError {
      throw e
    } catch {
      throw AttnaxError.file(path: path, message: "not \(expected) of the expected form")
    }
  }
}
