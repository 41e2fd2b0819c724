import AttnaxFormats
import AttnaxTokenizers
import Foundation
import _TestSupport

/// The tokenizer tests' fixtures (Tests/Fixtures/tokenizers) and their JSON-lines reader, on top
/// of the shared ``Fixtures`` (_TestSupport).
extension Fixtures {
  /// `Tests/Fixtures/tokenizers/<name>`.
  static func tokenizerURL(_ name: String) -> URL { URL(fileURLWithPath: path("tokenizers/\(name)")) }

  /// The tokenizer in `Tests/Fixtures/tokenizers/<name>`.
  static func tokenizer(_ name: String) throws -> Tokenizer {
    try Tokenizer.load(directory: tokenizerURL(name))
  }

  /// One line of a tokenizer fixture: a corpus string and the reference ids.
  struct Case {
    var line: Int
    var text: String
    var ids: [Int32]
  }

  /// The lines of a `{"text": ..., "ids": [...]}` JSON-lines file in Tests/Fixtures/tokenizers.
  static func jsonl(_ name: String) throws -> [Case] {
    let data = try Data(contentsOf: tokenizerURL(name))
    var cases: [Case] = []
    for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() where !line.isEmpty {
      let value = try JSONValue.parse(Array(line), file: name)
      guard case let .string(text)? = value["text"], case let .array(items)? = value["ids"] else {
        throw TokenizerError(file: name, field: "line \(n + 1)", message: "expected {\"text\": ..., \"ids\": [...]}")
      }
      let ids = try items.map { item -> Int32 in
        guard case let .int(v) = item else { throw TokenizerError(file: name, field: "line \(n + 1)", message: "bad id") }
        return Int32(v)
      }
      cases.append(Case(line: n + 1, text: text, ids: ids))
    }
    return cases
  }
}

/// GPT-2's byte → character table (the byte-level BPE alphabet).
func gpt2ByteCharacter(_ b: UInt8) -> String {
  var printable: [Int] = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
  var next = 256
  var table = [Int](repeating: 0, count: 256)
  for p in printable { table[p] = p }
  for x in 0..<256 where !printable.contains(x) {
    table[x] = next
    next += 1
    printable.append(x)
  }
  return String(Character(Unicode.Scalar(UInt32(table[Int(b)]))!))
}

extension String {
  /// A short printable form for failure messages.
  var shown: String {
    let escaped = unicodeScalars.map { s -> String in
      switch s {
      case "\n": return "\\n"
      case "\t": return "\\t"
      case "\r": return "\\r"
      default: return s.value < 0x20 || s.value == 0x7F ? String(format: "\\u{%X}", s.value) : String(s)
      }
    }.joined()
    return escaped.count > 120 ? String(escaped.prefix(120)) + "..." : escaped
  }
}
