import AttnaxFormats
import AttnaxTokenizers
import Foundation
import Testing
import _TestSupport

/// A tiny GGUF vocabulary in metadata form: byte-level BPE that spells "hello world", "123" and
/// "lo", three control tokens and one user-defined token.
struct TinyGGUF {
  static let control = 3
  static let userDefined = 4

  var tokens = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>", "h", "e", "l", "o", "Ġ", "w", "r", "d", "1", "2", "3",
    "he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "12", "123", "lo",
  ]
  var types = [control, control, control, userDefined] + [Int](repeating: 1, count: 23)
  var merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "1 2", "12 3"]
  var metadata: [String: GGUFValue] = [
    "tokenizer.ggml.model": .string("gpt2"),
    "tokenizer.ggml.pre": .string("gpt-2"),
    "tokenizer.ggml.bos_token_id": .uint32(1),
    "tokenizer.ggml.eos_token_id": .uint32(2),
    "tokenizer.ggml.padding_token_id": .uint32(2),
    "tokenizer.chat_template": .string(
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"),
  ]

  /// Adds a token of `type` at the end of the vocabulary; returns its id.
  @discardableResult
  mutating func append(_ token: String, type: Int = 1) -> Int32 {
    tokens.append(token)
    types.append(type)
    return Int32(tokens.count - 1)
  }

  /// The full metadata; `edit` changes it last.
  func values(_ edit: (inout [String: GGUFValue]) -> Void = { _ in }) -> [String: GGUFValue] {
    var m = metadata
    m["tokenizer.ggml.tokens"] = .array(tokens.map { .string($0) })
    m["tokenizer.ggml.token_type"] = .array(types.map { .int32(Int32($0)) })
    m["tokenizer.ggml.merges"] = .array(merges.map { .string($0) })
    edit(&m)
    return m
  }

  func tokenizer(_ edit: (inout [String: GGUFValue]) -> Void = { _ in }) throws -> Tokenizer {
    try Tokenizer(ggufMetadata: values(edit), file: "tiny.gguf")
  }
}

@Suite("GGUF tokenizer: tiny synthetic metadata")
struct GGUFTokenizerMetadataTests {
  let tiny = TinyGGUF()

  @Test("byte-level BPE, added tokens, special ids, end of generation and the chat template")
  func basics() throws {
    let tok = try tiny.tokenizer()
    #expect(tok.encode("hello world") == [18, 23])
    #expect(tok.decode([18, 23]) == "hello world")
    #expect(tok.vocabularySize == 27)
    let s = tok.specialTokens
    #expect(s.bos == 1 && s.eos == 2 && s.pad == 2 && s.unk == nil && !s.addBOS && !s.addEOS)
    // EOS, plus <|endoftext|> and <|im_end|> from llama.cpp's end-of-generation texts.
    #expect(s.endOfGeneration == [0, 2])
    #expect(tok.addedTokenList.map(\.id) == [0, 1, 2, 3])
    #expect(tok.addedTokenList.map(\.special) == [true, true, true, false])
    // CONTROL tokens only when parsing special tokens; USER_DEFINED ones always.
    #expect(tok.encode("<|im_start|><tool>", addSpecialTokens: false) == [1, 3])
    #expect(tok.encode("<tool>", addSpecialTokens: false, parseSpecial: false) == [3])
    #expect(tok.encode("<|im_end|>", addSpecialTokens: false, parseSpecial: false).first != 2)
    #expect(tok.decode([1, 18, 2, 3], skipSpecial: true) == "hello<tool>")
    let prompt = try tok.applyChatTemplate(messages: [ChatMessage(role: "user", content: "hello")])
    #expect(prompt == "<|im_start|>user\nhello<|im_end|>\n")
  }

  @Test(
    "tokenizer.ggml.pre picks llama.cpp's splitting",
    arguments: [
      ("gpt-2", [25], [6, 7]), ("smollm", [12, 13, 14], [6, 7]), ("qwen2", [12, 13, 14], [6, 7]),
      ("llama-bpe", [25], [26]), ("llama3", [25], [26]), ("starcoder", [12, 13, 14], [6, 7]),
    ] as [(String, [Int32], [Int32])])
  func preTokenizers(pre: String, digits: [Int32], lo: [Int32]) throws {
    let tok = try tiny.tokenizer { $0["tokenizer.ggml.pre"] = .string(pre) }
    #expect(tok.encode("123", addSpecialTokens: false) == digits, "123")
    // The Llama-3 family takes a word that is a token whole (ignore_merges); "lo" has no merge.
    #expect(tok.encode("lo", addSpecialTokens: false) == lo, "lo")
  }

  @Test("every supported tokenizer.ggml.pre builds")
  func supported() throws {
    let supported = Tokenizer.supportedPreTokenizers
    for pre in ["smollm", "qwen2", "llama-bpe", "llama3", "gpt-2", "stablelm2", "deepseek-r1-qwen", "falcon3", "olmo"] {
      #expect(supported.contains(pre), "\(pre)")
    }
    for pre in supported {
      #expect(try tiny.tokenizer { $0["tokenizer.ggml.pre"] = .string(pre) }.encode("hello", addSpecialTokens: false) == [18])
    }
  }

  @Test("add_bos_token / add_eos_token, and BOS / EOS 11 without their keys")
  func bosEos() throws {
    let both = try tiny.tokenizer {
      $0["tokenizer.ggml.add_bos_token"] = .bool(true)
      $0["tokenizer.ggml.add_eos_token"] = .bool(true)
    }
    #expect(both.encode("hello") == [1, 18, 2])
    #expect(both.encode("hello", addSpecialTokens: false) == [18])
    let defaults = try tiny.tokenizer {
      $0["tokenizer.ggml.bos_token_id"] = nil
      $0["tokenizer.ggml.eos_token_id"] = nil
    }
    #expect(defaults.specialTokens.bos == 11 && defaults.specialTokens.eos == 11)
    #expect(defaults.specialTokens.endOfGeneration == [0, 2, 11])
    // Without add_bos_token llama.cpp adds BOS for the Llama-3 family only.
    #expect(try tiny.tokenizer { $0["tokenizer.ggml.pre"] = .string("llama-bpe") }.encode("hello") == [1, 18])
    #expect(try tiny.tokenizer { $0["tokenizer.ggml.pre"] = .string("qwen2") }.encode("hello") == [18])
    let noBOS = try tiny.tokenizer {
      $0["tokenizer.ggml.pre"] = .string("llama3")
      $0["tokenizer.ggml.add_bos_token"] = .bool(false)
    }
    #expect(noBOS.encode("hello") == [18])
  }

  @Test("token types: UNKNOWN special, UNUSED and BYTE not added, none without the key")
  func tokenTypes() throws {
    var t = tiny
    let unknown = t.append("<unk>", type: 2)
    let unused = t.append("<unused0>", type: 5)
    let byte = t.append("<0x41>", type: 6)
    let tok = try t.tokenizer()
    #expect(tok.isSpecial(unknown) && !tok.isSpecial(unused) && !tok.isSpecial(byte))
    #expect(!tok.addedTokenList.contains { $0.id == unused || $0.id == byte })
    // Without token types only llama.cpp's control-looking texts become special.
    let untyped = try t.tokenizer { $0["tokenizer.ggml.token_type"] = nil }
    #expect(untyped.addedTokenList.map(\.id) == [0, 2])
  }

  @Test("llama.cpp's end-of-generation rules and the token types its loader changes")
  func endOfGeneration() throws {
    var t = tiny
    let endOfText = t.append("</s>")  // NORMAL, on the end-of-generation list: becomes special
    let fimPad = t.append("<|fim_pad|>")  // found by text: ends generation, special
    let fimPrefix = t.append("<|fim_prefix|>")  // found by text: special, not an end
    let tok = try t.tokenizer()
    #expect(tok.specialTokens.endOfGeneration == [0, 2, endOfText, fimPad])
    #expect(tok.isSpecial(endOfText) && tok.isSpecial(fimPad) && tok.isSpecial(fimPrefix))
    #expect(tok.encode("a</s>", addSpecialTokens: false).last == endOfText)

    // A role the metadata names is not looked for by text.
    let named = try t.tokenizer {
      $0["tokenizer.ggml.fim_pad_token_id"] = .uint32(3)
      $0["tokenizer.ggml.eot_token_id"] = .uint32(3)
    }
    #expect(named.specialTokens.endOfGeneration == [0, 2, 3, endOfText])
    #expect(!named.isSpecial(fimPad) && !named.isSpecial(3))

    // gpt-oss: <|end|> is no end next to <|return|> and <|call|>, and is printed (USER_DEFINED).
    var g = tiny
    let end = g.append("<|end|>", type: TinyGGUF.control)
    let ret = g.append("<|return|>", type: TinyGGUF.control)
    let call = g.append("<|call|>", type: TinyGGUF.control)
    let channel = g.append("<|channel|>", type: TinyGGUF.control)
    let gptOSS = try g.tokenizer()
    #expect(gptOSS.specialTokens.endOfGeneration == [0, 2, ret, call])
    #expect(!gptOSS.isSpecial(end) && !gptOSS.isSpecial(channel))
    #expect(gptOSS.encode("<|channel|>", addSpecialTokens: false, parseSpecial: false) == [channel])

    // gemma4: </s> is a normal token next to <|tool_response>.
    var e = tiny
    let s = e.append("</s>")
    let toolResponse = e.append("<|tool_response>", type: TinyGGUF.control)
    let gemma = try e.tokenizer()
    #expect(gemma.specialTokens.endOfGeneration == [0, 2, toolResponse])
    #expect(!gemma.addedTokenList.contains { $0.id == s })
  }

  @Test("Tokenizer(gguf:) on a GGUF file written to disk; its errors name the file's path")
  func file() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-tokenizer-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    func write(_ name: String, _ metadata: [String: GGUFValue]) throws -> GGUFFile {
      var writer = GGUFTestWriter()
      writer.metadata = metadata.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
      let path = directory.appendingPathComponent(name).path
      try Data(writer.bytes()).write(to: URL(fileURLWithPath: path))
      return try GGUFFile(path: path)
    }
    let tok = try Tokenizer(gguf: write("tiny.gguf", tiny.values()))
    #expect(tok.encode("hello world") == [18, 23])
    #expect(tok.specialTokens.endOfGeneration == [0, 2])
    let bad = try write("bad.gguf", tiny.values { $0["tokenizer.ggml.pre"] = .string("bogus") })
    #expect(throws: TokenizerError.self) { try Tokenizer(gguf: bad) }
    do {
      _ = try Tokenizer(gguf: bad)
    } catch {
      #expect("\(error)".hasPrefix("\(bad.path): tokenizer.ggml.pre: \"bogus\" is not supported"), "\(error)")
    }
  }

  /// The error message `metadata` gets, or a description of what happened instead.
  func failure(_ metadata: [String: GGUFValue]) -> String {
    do {
      _ = try Tokenizer(ggufMetadata: metadata, file: "tiny.gguf")
      return "no error"
    } catch let e as TokenizerError {
      return e.description
    } catch {
      return "untyped: \(error)"
    }
  }

  @Test("refusals: one line naming the GGUF key")
  func refusals() {
    let t = tiny
    let cases: [(String, (inout [String: GGUFValue]) -> Void)] = [
      ("tokenizer.ggml.model: missing", { $0["tokenizer.ggml.model"] = nil }),
      (
        "tokenizer.ggml.model: \"llama\" is not supported (only \"gpt2\", byte-level BPE)",
        { $0["tokenizer.ggml.model"] = .string("llama") }
      ),
      ("tokenizer.ggml.model: expected a string, found uint32", { $0["tokenizer.ggml.model"] = .uint32(1) }),
      (
        "tokenizer.ggml.pre: missing (llama.cpp would fall back to a degraded default)",
        { $0["tokenizer.ggml.pre"] = nil }
      ),
      (
        "tokenizer.ggml.pre: \"deepseek-llm\" is not supported (supported: codeshell, command-r, ",
        { $0["tokenizer.ggml.pre"] = .string("deepseek-llm") }
      ),
      ("tokenizer.ggml.tokens: missing", { $0["tokenizer.ggml.tokens"] = nil }),
      ("tokenizer.ggml.tokens: empty", { $0["tokenizer.ggml.tokens"] = .array([]) }),
      (
        "tokenizer.ggml.tokens: expected an array of strings, found string",
        { $0["tokenizer.ggml.tokens"] = .string("h") }
      ),
      (
        "tokenizer.ggml.tokens[1]: not a string (int32)",
        { $0["tokenizer.ggml.tokens"] = .array([.string("h"), .int32(7)]) }
      ),
      (
        "tokenizer.ggml.tokens[1]: empty token",
        { $0["tokenizer.ggml.tokens"] = .array([.string("h"), .string("")]) }
      ),
      (
        "tokenizer.ggml.tokens[2]: \"h\" repeats token 0",
        { $0["tokenizer.ggml.tokens"] = .array([.string("h"), .string("e"), .string("h")]) }
      ),
      (
        "tokenizer.ggml.tokens[1]: \"\\u{a}\" repeats token 0",
        { $0["tokenizer.ggml.tokens"] = .array([.string("\n"), .string("\n")]) }
      ),
      ("tokenizer.ggml.merges: missing", { $0["tokenizer.ggml.merges"] = nil }),
      ("tokenizer.ggml.merges[0]: \"hq\" is not \"left right\"", { $0["tokenizer.ggml.merges"] = .array([.string("hq")]) }),
      (
        "tokenizer.ggml.merges[1]: \"q\" is not in tokenizer.ggml.tokens",
        { $0["tokenizer.ggml.merges"] = .array([.string("h e"), .string("h q")]) }
      ),
      (
        "tokenizer.ggml.merges[0]: \"q\" is not in tokenizer.ggml.tokens",
        { $0["tokenizer.ggml.merges"] = .array([.string("q h")]) }
      ),
      (
        "tokenizer.ggml.merges[0]: \"eh\" is not in tokenizer.ggml.tokens",
        { $0["tokenizer.ggml.merges"] = .array([.string("e h")]) }
      ),
      (
        "tokenizer.ggml.merges[0]: not a string (uint8)",
        { $0["tokenizer.ggml.merges"] = .array([.uint8(1)]) }
      ),
      (
        "tokenizer.ggml.token_type: 2 entries for 27 tokens",
        { $0["tokenizer.ggml.token_type"] = .array([.int32(1), .int32(1)]) }
      ),
      (
        "tokenizer.ggml.token_type[1]: expected an integer, found string",
        { $0["tokenizer.ggml.token_type"] = .array([.int32(1), .string("x")]) }
      ),
      (
        "tokenizer.ggml.bos_token_id: 99 is outside the vocabulary (0..26)",
        { $0["tokenizer.ggml.bos_token_id"] = .uint32(99) }
      ),
      (
        "tokenizer.ggml.eos_token_id: -1 is outside the vocabulary (0..26)",
        { $0["tokenizer.ggml.eos_token_id"] = .int32(-1) }
      ),
      (
        "tokenizer.ggml.padding_token_id: 18446744073709551615 is outside the vocabulary (0..26)",
        { $0["tokenizer.ggml.padding_token_id"] = .uint64(.max) }
      ),
      (
        "tokenizer.ggml.unknown_token_id: 27 is outside the vocabulary (0..26)",
        { $0["tokenizer.ggml.unknown_token_id"] = .uint32(27) }
      ),
      (
        "tokenizer.ggml.eot_token_id: expected an integer, found string",
        { $0["tokenizer.ggml.eot_token_id"] = .string("<|im_end|>") }
      ),
      (
        "tokenizer.ggml.fim_rep_token_id: 1000 is outside the vocabulary (0..26)",
        { $0["tokenizer.ggml.fim_rep_token_id"] = .uint32(1000) }
      ),
      (
        "tokenizer.ggml.add_bos_token: expected true or false, found string",
        { $0["tokenizer.ggml.add_bos_token"] = .string("yes") }
      ),
      (
        "tokenizer.ggml.add_eos_token: true, but tokenizer.ggml.eos_token_id is not set",
        {
          // A vocabulary of 11 tokens or fewer has no default EOS.
          $0["tokenizer.ggml.tokens"] = .array(["a", "b", "c"].map { .string($0) })
          $0["tokenizer.ggml.token_type"] = nil
          $0["tokenizer.ggml.merges"] = .array([])
          $0["tokenizer.ggml.bos_token_id"] = nil
          $0["tokenizer.ggml.eos_token_id"] = nil
          $0["tokenizer.ggml.padding_token_id"] = nil
          $0["tokenizer.ggml.add_eos_token"] = .bool(true)
        }
      ),
      ("tokenizer.chat_template: expected a string, found uint32", { $0["tokenizer.chat_template"] = .uint32(3) }),
    ]
    for (expected, edit) in cases {
      let message = failure(t.values(edit))
      #expect(message.hasPrefix("tiny.gguf: " + expected), "got \(message)")
      #expect(!message.contains("\n"), "\(message)")
    }
  }
}
