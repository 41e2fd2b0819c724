import AttnaxFormats
import AttnaxTokenizers
import Foundation
import Testing
import _TestSupport

/// Bad tokenizer files fail with a TokenizerError naming the file and the field, never a crash.
@Suite("Tokenizer load errors")
struct LoadErrorTests {
  /// tiny-bpe's tokenizer.json with `edit` applied to its text.
  func tinyBPE(_ edit: (String) -> String) throws -> [UInt8] {
    let text = try String(contentsOf: Fixtures.tokenizerURL("tiny-bpe/tokenizer.json"), encoding: .utf8)
    return Array(edit(text).utf8)
  }

  func error(_ bytes: [UInt8], config: [UInt8]? = nil) -> String? {
    do {
      _ = try Tokenizer(tokenizerJSON: bytes, tokenizerConfigJSON: config)
      return nil
    } catch let e as TokenizerError {
      return e.description
    } catch {
      return "untyped: \(error)"
    }
  }

  @Test(
    "errors name the file and the field",
    arguments: [
      ("{", "tokenizer.json: invalid JSON at line 1, column 2"),
      ("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "tokenizer.json: model.type: unsupported model \"Unigram\""),
      (
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}",
        "tokenizer.json: model.vocab.a: expected an integer, found a string"
      ),
      (
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}",
        "tokenizer.json: model.merges[0]: \"b\" is not in model.vocab"
      ),
      (
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [7]}}",
        "tokenizer.json: model.merges[0]: expected \"left right\" or [left, right], found a number"
      ),
      ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}}}", "tokenizer.json: model.vocab.a: token id -3 is negative"),
      ("{}", "tokenizer.json: model: missing"),
      (
        "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}",
        "tokenizer.json: model.unk_token: \"[UNK]\" is not in model.vocab"
      ),
      (
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}, \"behavior\": \"Isolated\"}}",
        "tokenizer.json: pre_tokenizer.pattern: unsupported regex \\w+"
      ),
      (
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}, \"normalizer\": {\"type\": \"Precompiled\"}}",
        "tokenizer.json: normalizer.type: unsupported normalizer \"Precompiled\""
      ),
      (
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}, \"added_tokens\": [{\"id\": 1}]}",
        "tokenizer.json: added_tokens[0].content: missing"
      ),
      (
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}, \"truncation\": {\"max_length\": 0}}",
        "tokenizer.json: truncation.max_length: must be positive"
      ),
      ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\\ud800\": 0}}}", "tokenizer.json: invalid JSON at line 1, column "),
    ])
  func tokenizerJSON(json: String, expected: String) {
    let message = error(Array(json.utf8))
    #expect(message?.hasPrefix(expected) == true, "got \(message ?? "no error")")
  }

  @Test("a merge of the real fixture with a token missing from the vocabulary")
  func badMerge() throws {
    let bytes = try tinyBPE { $0.replacingOccurrences(of: "\"h e\"", with: "\"h q\"") }
    #expect(error(bytes) == "tokenizer.json: model.merges[0]: \"q\" is not in model.vocab")
  }

  @Test("tokenizer_config.json errors name that file")
  func config() throws {
    let good = try tinyBPE { $0 }
    #expect(
      error(good, config: Array("{\"eos_token\": \"<|nope|>\"}".utf8))
        == "tokenizer_config.json: eos_token: \"<|nope|>\" is not a token of tokenizer.json")
    #expect(
      error(good, config: Array("{\"eos_token_ids\": [2, 400]}".utf8))
        == "tokenizer_config.json: eos_token_ids[1]: 400 is not a token id")
    #expect(
      error(good, config: Array("{\"add_bos_token\": 1}".utf8))
        == "tokenizer_config.json: add_bos_token: expected true or false, found a number")
    #expect(error(good, config: Array("[]".utf8))?.hasPrefix("tokenizer_config.json: ") == true)
  }

  @Test("an added token with a vocabulary token's text but another id: both ids decode, the added id encodes")
  func addedTokenShadowsVocabulary() throws {
    // The vocabulary's largest id is 2 ("c"); the added "c" at id 1 must not hide it.
    let json =
      #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2}, "merges": []}, "#
      + #""added_tokens": [{"id": 1, "content": "c", "special": false}]}"#
    let tokenizer = try Tokenizer(tokenizerJSON: Array(json.utf8))
    #expect(tokenizer.encode("c") == [1])
    #expect(tokenizer.decode([2]) == "c")
    #expect(tokenizer.decode([1]) == "c")
  }

  @Test("a missing directory or file is an error, not a crash")
  func missing() {
    #expect(throws: TokenizerError.self) { try Tokenizer.load(directory: URL(fileURLWithPath: "/nonexistent/dir")) }
  }

  @Test("JSON parsing: escapes, surrogate pairs, numbers, order")
  func json() throws {
    let v = try JSONValue.parse(
      Array(#"{"b": [1, -2.5e3, true, null], "a": "\u00e9\ud83d\ude00\n\"", "b2": {}}"#.utf8), file: "t.json")
    guard case let .object(members) = v else {
      Issue.record("not an object")
      return
    }
    #expect(members.map(\.key) == ["b", "a", "b2"])
    #expect(v["a"] == .string("é😀\n\""))
    #expect(v["b"] == .array([.int(1), .double(-2500), .bool(true), .null]))
    for bad in ["[1,]", "{\"a\" 1}", "\"\\x\"", "01", "[", "nul", String(repeating: "[", count: 200)] {
      #expect(throws: TokenizerError.self, "\(bad)") { try JSONValue.parse(Array(bad.utf8), file: "t.json") }
    }
  }
}
