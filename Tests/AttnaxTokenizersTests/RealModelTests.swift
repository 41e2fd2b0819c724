import AttnaxTokenizers
import Foundation
import Testing
import _TestSupport

// The real models' tokenizers against the reference engines' ids for the 1,481-string corpus
// (scripts/reference/tokenizer_corpus.py; fixtures written by
// scripts/reference/tokenize_reference.py). They need the model directories, which live in
// the cache, not the repository: scripts/test sets ATTNAX_SMOLLM2_DIR (tokenizer.json +
// tokenizer_config.json written by scripts/reference/gguf_tokenizer.py from the SmolLM2 GGUF) and
// ATTNAX_MINILM_DIR (all-MiniLM-L6-v2's folder); without them these tests are disabled.

private let smollm2Directory = Fixtures.model("ATTNAX_SMOLLM2_DIR").map(URL.init(fileURLWithPath:))
private let minilmDirectory = Fixtures.model("ATTNAX_MINILM_DIR").map(URL.init(fileURLWithPath:))

@Suite(
  "SmolLM2 tokenizer (llama.cpp reference)", .enabled(if: smollm2Directory != nil, "set ATTNAX_SMOLLM2_DIR (scripts/test does)"))
struct SmolLM2TokenizerTests {
  let tok: Tokenizer
  let cases: [Fixtures.Case]

  init() throws {
    tok = try Tokenizer.load(directory: smollm2Directory ?? URL(fileURLWithPath: "/nonexistent"))
    cases = try Fixtures.jsonl("smollm2.jsonl")
  }

  @Test("every corpus line encodes to llama.cpp's ids")
  func corpus() {
    let matched = matchCorpus(tok, cases, file: "smollm2.jsonl", reference: "llama.cpp", addSpecialTokens: false)
    #expect(matched == cases.count)
    #expect(cases.count >= 1_200)
  }

  @Test("decode(encode(x)) == x for every corpus string the vocabulary can spell")
  func roundTrip() {
    // SmolLM2 has no byte token for 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xF1, 0xF2, ...: text
    // with those bytes cannot come back (llama.cpp drops them too).
    let spellable = (0...255).map { tok.id(forToken: gpt2ByteCharacter(UInt8($0))) != nil }
    var ok = 0
    var unspellable = 0
    for c in cases {
      if c.text.utf8.contains(where: { !spellable[Int($0)] }) {
        unspellable += 1
        continue
      }
      let back = tok.decode(tok.encode(c.text, addSpecialTokens: false))
      if back == c.text && back.unicodeScalars.elementsEqual(c.text.unicodeScalars) {
        ok += 1
      } else {
        Issue.record("line \(c.line): \(c.text.shown) came back as \(back.shown)")
      }
    }
    print("smollm2: \(ok)/\(cases.count - unspellable) corpus strings round-trip (\(unspellable) hold bytes without a token)")
    #expect(ok == cases.count - unspellable)
  }

  @Test("the streaming decoder's pieces add up to decode(all)")
  func streaming() {
    for skip in [false, true] {
      for c in cases {
        var stream = tok.makeStreamingDetokenizer(skipSpecial: skip)
        var text = ""
        for id in c.ids { text += stream.append(id) }
        text += stream.flush()
        let whole = tok.decode(c.ids, skipSpecial: skip)
        #expect(text.unicodeScalars.elementsEqual(whole.unicodeScalars), "line \(c.line) skipSpecial \(skip): \(c.text.shown)")
      }
    }
  }

  @Test("special tokens, end-of-generation ids and the chat template")
  func specials() throws {
    let s = tok.specialTokens
    #expect(s.bos == 1 && s.eos == 2 && s.pad == 2 && s.unk == 0)
    #expect(s.endOfGeneration == [0, 2, 4])
    #expect(tok.vocabularySize == 49_152)
    let prompt = try tok.applyChatTemplate(messages: [ChatMessage(role: "user", content: "What is the capital of France?")])
    #expect(
      prompt
        == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    #expect(tok.encode(prompt).prefix(2) == [1, 9690])
  }
}

@Suite(
  "MiniLM tokenizer (HF tokenizers reference)", .enabled(if: minilmDirectory != nil, "set ATTNAX_MINILM_DIR (scripts/test does)"))
struct MiniLMTokenizerTests {
  let tok: Tokenizer
  let cases: [Fixtures.Case]

  init() throws {
    tok = try Tokenizer.load(directory: minilmDirectory ?? URL(fileURLWithPath: "/nonexistent"))
    cases = try Fixtures.jsonl("minilm.jsonl")
  }

  @Test("every corpus line encodes to the tokenizers package's ids (truncation 256)")
  func corpus() {
    let matched = matchCorpus(tok, cases, file: "minilm.jsonl", reference: "tokenizers", addSpecialTokens: true)
    #expect(matched == cases.count)
  }

  @Test("special tokens and streaming")
  func specials() {
    let s = tok.specialTokens
    #expect(s.cls == 101 && s.sep == 102 && s.pad == 0 && s.unk == 100 && s.mask == 103)
    #expect(tok.maxSequenceLength == 256)
    for c in cases.prefix(300) {
      var stream = tok.makeStreamingDetokenizer(skipSpecial: true)
      let text = c.ids.map { stream.append($0) }.joined() + stream.flush()
      #expect(text == tok.decode(c.ids, skipSpecial: true), "line \(c.line)")
    }
  }
}

/// Encodes every corpus line (special tokens parsed) and records each one whose ids differ from
/// the reference's; returns how many matched.
func matchCorpus(
  _ tok: Tokenizer, _ cases: [Fixtures.Case], file: String, reference: String, addSpecialTokens: Bool,
  sourceLocation: SourceLocation = #_sourceLocation
) -> Int {
  var matched = 0
  for c in cases {
    let ids = tok.encode(c.text, addSpecialTokens: addSpecialTokens, parseSpecial: true)
    if ids == c.ids {
      matched += 1
    } else {
      let got = "got".padding(toLength: reference.count, withPad: " ", startingAt: 0)
      Issue.record(
        "\(file) line \(c.line): \(c.text.shown)\n  \(got) \(ids)\n  \(reference) \(c.ids)", sourceLocation: sourceLocation)
    }
  }
  print("\(file): \(matched)/\(cases.count) corpus lines equal to the \(reference) ids")
  return matched
}
