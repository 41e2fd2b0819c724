// Generator.check, the request check made before any token: a prompt that alone fills the
// model's positions is blamed on the prompt (its length and the limit), too many new tokens on
// --max-new-tokens, and no value of maxNewTokens overflows the arithmetic (Int.max included),
// also for a model without a position limit (32-bit position ids bound it).

import AttnaxFormats
import Testing
import _TestSupport

@testable import AttnaxBlocks

@Suite("Generation request check")
struct GenerationCheckTests {
  func message(_ prompts: [[Int32]], _ maxNewTokens: Int, _ config: TransformerConfig = .demo) -> String? {
    do {
      try Generator.check(GenerationRequest(prompts: prompts, maxNewTokens: maxNewTokens), config: config)
      return nil
    } catch { return "\(error)" }
  }

  @Test("a prompt that alone fills the model's positions names the prompt, its length and the limit")
  func promptTooLong() {
    let long = [Int32](repeating: 5, count: 300)
    #expect(
      message([long], 1)
        == "input 'prompts': the prompt has 300 tokens, but the model holds 256 positions (max_len (the RoPE table)) for the prompt and its new tokens together: at most 255 prompt tokens"
    )
    #expect(
      message([[1, 2], [Int32](repeating: 5, count: 256), long], 64)
        == "input 'prompts': prompt 3 has 300 tokens, but the model holds 256 positions (max_len (the RoPE table)) for the prompt and its new tokens together: at most 255 prompt tokens"
    )
    // 255 tokens leave one position: one new token fits, two do not (then --max-new-tokens is at fault).
    let fits = [Int32](repeating: 5, count: 255)
    #expect(message([fits], 1) == nil)
    #expect(
      message([fits], 2)
        == "input 'max-new-tokens': the prompt (255 tokens) and 2 new tokens need 257 positions, but the model holds 256 (max_len (the RoPE table))"
    )
  }

  @Test("any --max-new-tokens, Int.max included, is checked without overflow")
  func noOverflow() {
    #expect(
      message([[1, 2, 3]], Int.max)
        == "input 'max-new-tokens': the prompt (3 tokens) and \(Int.max) new tokens need 9223372036854775810 positions, but the model holds 256 (max_len (the RoPE table))"
    )
    #expect(message([[1, 2, 3]], Int.min) == "input 'max-new-tokens': must be at least 1, got \(Int.min)")
    var alibi = TransformerConfig.demo
    alibi.posEmbType = .alibi
    #expect(alibi.sequenceLimit == nil)
    #expect(message([[1, 2, 3], [4]], 1 << 20, alibi) == nil)
    #expect(
      message([[1, 2, 3], [4]], Int.max, alibi)
        == "input 'max-new-tokens': the longest prompt (3 tokens) and \(Int.max) new tokens need 9223372036854775810 positions, but the model holds 2147483647 (32-bit position ids)"
    )
  }
}
