import AttnaxTokenizers
import Foundation
import Testing
import _TestSupport

/// Tests/Fixtures/tokenizers/tiny-bpe: a 49-token byte-level BPE (Digits + ByteLevel
/// pre-tokenizer as SmolLM2's) whose ids are worked out by hand:
/// 0 `<|endoftext|>`, 1 `<|im_start|>`, 2 `<|im_end|>` (special); 3 `!`, 4 `'`, 5-7 `0 1 2`,
/// 8 `<`, 9 `>`, 10 `_`, 11 `|`, 12 `a`, 13 `d`, 14 `e`, 15 `h`, 16 `i`, 17 `l`, 18 `m`,
/// 19 `n`, 20 `o`, 21 `r`, 22 `s`, 23 `t`, 24 `w`, 25 `Ġ` (space), 26 `Ċ` (newline), 27-28 `é`'s
/// bytes, 29-32 `😀`'s bytes; merges give 33 he, 34 ll, 35 hell, 36 hello, 37 Ġw, 38 or,
/// 39 Ġwor, 40 Ġworl, 41 Ġworld, 42 é, 43 's, 44-46 😀, 47 aa, 48 ĠĠ.
@Suite("Tiny byte-level BPE")
struct TinyBPETests {
  let tok: Tokenizer

  init() throws { tok = try Fixtures.tokenizer("tiny-bpe") }

  @Test(
    "merges apply lowest rank first, leftmost first among equals",
    arguments: [
      ("hello world", [36, 41] as [Int32]),
      ("hello!", [36, 3]),
      ("aaa", [47, 12]),
      ("aaaa", [47, 47]),
      ("it's", [16, 23, 43]),
      ("é", [42]),
      ("😀", [46]),
      ("z", []),  // no byte character for z in this vocabulary and no unk: dropped
      ("", []),
    ])
  func merges(text: String, ids: [Int32]) {
    #expect(tok.encode(text) == ids, "\(text.shown)")
  }

  @Test(
    "whitespace runs keep their last space for the next word; digits go one by one",
    arguments: [
      ("hello  world", [36, 25, 41] as [Int32]),
      ("   hello", [48, 25, 36]),
      ("  ", [48]),
      ("hello\n", [36, 26]),
      ("a 12", [12, 25, 6, 7]),
    ])
  func pretokenization(text: String, ids: [Int32]) {
    #expect(tok.encode(text) == ids, "\(text.shown)")
  }

  @Test("special tokens are split out only when parsing special tokens")
  func specialTokens() {
    let text = "<|im_start|>hello<|im_end|>"
    #expect(tok.encode(text) == [1, 36, 2])
    // As text: <| im _ start |> hello <| im _ end |>
    #expect(
      tok.encode(text, parseSpecial: false) == [
        8, 11, 16, 18, 10, 22, 23, 12, 21, 23, 11, 9, 36, 8, 11, 16, 18, 10, 14, 19, 13, 11, 9,
      ])
    #expect(tok.encode("<|im_end|><|im_end|>") == [2, 2])
    #expect(tok.encode("a<|endoftext|>a") == [12, 0, 12])
  }

  @Test("lstrip, rstrip and single_word as HF applies them")
  func addedTokenOptions() throws {
    var text = try String(contentsOf: Fixtures.tokenizerURL("tiny-bpe/tokenizer.json"), encoding: .utf8)
    // <|im_end|> (id 2) strips whitespace on both sides; <|endoftext|> (id 0) matches whole words only.
    text = text.replacingOccurrences(
      of: "\"content\": \"<|im_end|>\",\n   \"single_word\": false,\n   \"lstrip\": false,\n   \"rstrip\": false",
      with: "\"content\": \"<|im_end|>\",\n   \"single_word\": false,\n   \"lstrip\": true,\n   \"rstrip\": true")
    text = text.replacingOccurrences(
      of: "\"content\": \"<|endoftext|>\",\n   \"single_word\": false",
      with: "\"content\": \"<|endoftext|>\",\n   \"single_word\": true")
    let t = try Tokenizer(tokenizerJSON: Array(text.utf8))
    #expect(
      t.addedTokenList.map(\.lstrip) == [false, false, true] && t.addedTokenList.map(\.singleWord) == [true, false, false])
    // Expected ids from the `tokenizers` package on the same file.
    #expect(t.encode("hello <|im_end|> world") == [36, 2, 24, 38, 17, 13])
    #expect(t.encode("hello\t\n<|im_end|>\nworld") == [36, 2, 24, 38, 17, 13])
    #expect(t.encode("hello\u{A0}<|im_end|>") == [36, 2])
    #expect(t.encode("a<|endoftext|>a") == [12, 8, 11, 14, 19, 13, 20, 23, 14, 23, 11, 9, 12])
    #expect(t.encode("a <|endoftext|> a") == [12, 25, 0, 25, 12])
    #expect(t.encode("<|endoftext|>") == [0])
  }

  @Test("decode inverts encode; special tokens print as written unless skipped")
  func decode() {
    #expect(tok.decode([36, 41]) == "hello world")
    #expect(tok.decode([1, 36, 2]) == "<|im_start|>hello<|im_end|>")
    #expect(tok.decode([1, 36, 2], skipSpecial: true) == "hello")
    #expect(tok.decode([29]) == "\u{FFFD}")  // a lone lead byte of 😀
    #expect(tok.decode([999, -1, 36]) == "hello")  // unknown ids are skipped
    for text in ["hello world", "   hello", "a 12", "😀é!", "<|im_start|>hello\n<|im_end|>"] {
      #expect(tok.decode(tok.encode(text)) == text)
    }
  }

  @Test("lookups, special tokens and eos_token_ids from tokenizer_config.json")
  func lookups() throws {
    #expect(tok.vocabularySize == 49)
    #expect(tok.id(forToken: "Ġworld") == 41)
    #expect(tok.token(forID: 41) == "Ġworld")
    #expect(tok.token(forID: 49) == nil)
    #expect(tok.isSpecial(2) && !tok.isSpecial(36))
    let s = tok.specialTokens
    #expect(s.bos == 1 && s.eos == 2 && s.endOfGeneration == [0, 2])
    #expect(s.bosText == "<|im_start|>" && s.eosText == "<|im_end|>")
    #expect(!s.addBOS && !s.addEOS)
    #expect(tok.encode("hello", addSpecialTokens: true) == [36])  // add_bos_token false
  }

  @Test("streaming holds back the bytes of an unfinished character")
  func streaming() {
    var stream = tok.makeStreamingDetokenizer()
    #expect(stream.append(36) == "hello")
    #expect(stream.append(25) == " ")
    #expect(stream.append(29) == "")
    #expect(stream.append(30) == "")
    #expect(stream.append(31) == "")
    #expect(stream.append(32) == "😀")
    #expect(stream.append(27) == "")
    #expect(stream.flush() == "\u{FFFD}")  // é cut short

    var quiet = tok.makeStreamingDetokenizer(skipSpecial: true)
    let out = [1, 36, 2].map { quiet.append($0) }.joined() + quiet.flush()
    #expect(out == "hello")
  }

  @Test("the chat template renders ChatML")
  func chat() throws {
    let prompt = try tok.applyChatTemplate(messages: [ChatMessage(role: "user", content: "hello")], addGenerationPrompt: true)
    #expect(prompt == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n")
    #expect(tok.encode(prompt).first == 1)
  }
}
