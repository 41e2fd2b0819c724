import AttnaxTokenizers
import Foundation
import Testing
import _TestSupport

/// Tests/Fixtures/tokenizers/tiny-wordpiece: a 25-token BERT vocabulary, worked out by hand:
/// 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], 4 [MASK], 5 hello, 6 world, 7 ##s, 8 un, 9 ##aff,
/// 10 ##able, 11 `,`, 12 `!`, 13 cafe, 14 中, 15 文, 16 the, 17 a, 18 ##b, 19 b, 20 `'`, 21 t,
/// 22 don, 23 `$`, 24 `5`. BertNormalizer (lowercase, accents stripped), BertPreTokenizer,
/// `[CLS] $A [SEP]`, truncation at 8, max_input_chars_per_word 10, padding (ignored).
@Suite("Tiny WordPiece")
struct TinyWordPieceTests {
  let tok: Tokenizer

  init() throws { tok = try Fixtures.tokenizer("tiny-wordpiece") }

  @Test(
    "greedy longest pieces with ## continuations, [UNK] for what does not split",
    arguments: [
      ("Hello, World!", [2, 5, 11, 6, 12, 3] as [Int32]),
      ("unaffable", [2, 8, 9, 10, 3]),
      ("hellos", [2, 5, 7, 3]),
      ("xyz", [2, 1, 3]),
      ("supercalifragilistic", [2, 1, 3]),  // longer than max_input_chars_per_word
      ("a b ab", [2, 17, 19, 17, 18, 3]),
      ("", [2, 3]),
    ])
  func wordPiece(text: String, ids: [Int32]) {
    #expect(tok.encode(text) == ids, "\(text.shown)")
  }

  @Test(
    "BERT normalization and punctuation",
    arguments: [
      ("Café", [2, 13, 3] as [Int32]),  // lowercased, accent stripped
      ("Cafe\u{301}", [2, 13, 3]),  // NFD input
      ("中文", [2, 14, 15, 3]),  // CJK ideographs become words of their own
      ("don't", [2, 22, 20, 21, 3]),
      ("$5", [2, 23, 24, 3]),  // ASCII symbols count as punctuation
      ("HELLO\tworld\u{0}\u{200D}!", [2, 5, 6, 12, 3]),  // tab is a space; NUL and ZWJ are dropped
    ])
  func normalization(text: String, ids: [Int32]) {
    #expect(tok.encode(text) == ids, "\(text.shown)")
  }

  @Test("truncation keeps room for [CLS] and [SEP]; added tokens match before normalization")
  func truncationAndAddedTokens() {
    #expect(tok.encode("hello hello hello hello hello hello hello hello") == [2, 5, 5, 5, 5, 5, 5, 3])
    #expect(tok.encode("hello hello", addSpecialTokens: false) == [5, 5])
    #expect(tok.encode("[MASK] hello") == [2, 4, 5, 3])
    #expect(tok.encode("[mask] hello") == [2, 1, 1, 1, 5, 3])  // [ mask ] as text
    #expect(tok.encode("[MASK] hello", parseSpecial: false) == [2, 1, 1, 1, 5, 3])
  }

  @Test("decode joins ## pieces and cleans up spaces before punctuation")
  func decode() {
    #expect(tok.decode([2, 5, 11, 6, 12, 3]) == "[CLS] hello, world! [SEP]")
    #expect(tok.decode([2, 5, 11, 6, 12, 3], skipSpecial: true) == "hello, world!")
    #expect(tok.decode([8, 9, 10]) == "unaffable")
    #expect(tok.decode([22, 20, 21]) == "don ' t")
  }

  @Test("special token ids come from tokenizer_config.json")
  func specials() {
    let s = tok.specialTokens
    #expect(s.cls == 2 && s.sep == 3 && s.pad == 0 && s.unk == 1 && s.mask == 4)
    #expect(s.bos == nil && s.eos == nil && s.endOfGeneration.isEmpty)
    #expect(tok.maxSequenceLength == 8)
  }

  @Test("streaming word pieces equals decoding them all")
  func streaming() {
    for skip in [false, true] {
      let ids: [Int32] = [2, 8, 9, 10, 11, 5, 7, 12, 3]
      var stream = tok.makeStreamingDetokenizer(skipSpecial: skip)
      let text = ids.map { stream.append($0) }.joined() + stream.flush()
      #expect(text == tok.decode(ids, skipSpecial: skip))
    }
  }
}
