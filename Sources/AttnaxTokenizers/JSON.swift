import AttnaxFormats

// Tokenizer files are read by the package's one JSON parser (AttnaxFormats: strict RFC 8259, no
// duplicate keys, bounded nesting); its faults become TokenizerErrors naming the file.

extension JSONValue {
  /// Parses a JSON document of the file `file` (a name for messages).
  /// - Throws: `TokenizerError` naming `file`, with the line and column of the fault.
  public static func parse(_ bytes: [UInt8], file: String) throws -> JSONValue {
    do {
      return try parse(bytes)
    } catch let e as JSONParseError {
      throw TokenizerError(file: file, field: "", message: "invalid JSON at line \(e.line), column \(e.column): \(e.message)")
    }
  }
}
