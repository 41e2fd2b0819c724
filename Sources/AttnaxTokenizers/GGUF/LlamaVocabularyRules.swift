/// What llama.cpp's `llama-vocab.cpp` decides from a GGUF vocabulary beyond the tokens
/// themselves, as scripts/reference/gguf_tokenizer.py writes it down: the pre-tokenizer of each
/// `tokenizer.ggml.pre`, the token types it changes, and the ids that end generation.
enum LlamaVocabularyRules {
  /// `tokenizer.ggml.token_type` values (llama.cpp's `LLAMA_TOKEN_TYPE_*`).
  enum TokenType: Int {
    case normal = 1
    case unknown = 2
    case control = 3
    case userDefined = 4
    case unused = 5
    case byte = 6
  }

  /// How llama.cpp splits text before BPE for one `tokenizer.ggml.pre` value.
  struct PreTokenization: Sendable {
    /// The pre-tokenizer that gives llama.cpp's words (byte-level characters included).
    var preTokenizer: PreTokenizer
    /// Whether a word that is itself a token is taken whole before merging (`ignore_merges`).
    var ignoreMerges: Bool
    /// Whether BOS is added when the file has no `tokenizer.ggml.add_bos_token` (llama.cpp
    /// adds it for the Llama-3 family).
    var addBOS = false
  }

  /// GPT-2's regex after the byte-level map.
  private static let gpt2 = PreTokenization(
    preTokenizer: .byteLevel(addPrefixSpace: false, useRegex: true), ignoreMerges: false)
  /// Every \p{N} on its own, then GPT-2's regex.
  private static let digitsThenGPT2 = PreTokenization(
    preTokenizer: .sequence([.digits(individual: true), .byteLevel(addPrefixSpace: false, useRegex: true)]),
    ignoreMerges: false)

  /// The Llama-3 family regex (`\p{N}{1,maxDigits}`), then the byte-level map.
  private static func llama3(maxDigits: Int, ignoreMerges: Bool, addBOS: Bool) -> PreTokenization {
    PreTokenization(
      preTokenizer: .sequence([
        .split(pattern: .llama3(maxDigits: maxDigits), behavior: .isolated, invert: false),
        .byteLevel(addPrefixSpace: false, useRegex: false),
      ]),
      ignoreMerges: ignoreMerges, addBOS: addBOS)
  }

  /// The `tokenizer.ggml.pre` values whose llama.cpp regexes the tokenizer expresses exactly
  /// (gguf_tokenizer.py's `PRE_TOKENIZERS`), each with llama.cpp's splitting and defaults.
  static let preTokenizations: [String: PreTokenization] = {
    var table: [String: PreTokenization] = [:]
    for pre in ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"] {
      table[pre] = digitsThenGPT2
    }
    for pre in ["gpt-2", "phi-2", "olmo", "mpt", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de"] { table[pre] = gpt2 }
    for pre in ["llama3", "llama-v3", "llama-bpe", "falcon3"] {
      table[pre] = llama3(maxDigits: 3, ignoreMerges: true, addBOS: true)
    }
    for pre in ["qwen2", "deepseek-r1-qwen", "stablelm2"] {
      table[pre] = llama3(maxDigits: 1, ignoreMerges: false, addBOS: false)
    }
    return table
  }()

  // llama-vocab.cpp: texts taken for end of turn / message and the FIM tokens when the metadata
  // names none, and the texts that always end generation.
  static let endOfTurnTexts = [
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
    "<｜end▁of▁sentence｜>", "<end_of_utterance>",
  ]
  static let endOfMessageTexts = ["<|eom_id|>"]
  static let fimPrefixTexts = [
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>",
  ]
  static let fimSuffixTexts = [
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>",
  ]
  static let fimMiddleTexts = [
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>",
  ]
  static let fimPadTexts = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]
  static let fimRepoTexts = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]
  static let fimSeparatorTexts = ["<|file_sep|>"]
  static let endOfGenerationTexts = [
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
    "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
  ]
  /// gpt-oss's tokens that llama.cpp always prints (made USER_DEFINED).
  static let alwaysPrintedTexts = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]

  /// The ids the metadata gives for the tokens llama.cpp otherwise finds by text (nil: absent).
  struct MetadataIDs {
    var eos: Int32?
    var eot: Int32?
    var eom: Int32?
    var fimPrefix: Int32?
    var fimSuffix: Int32?
    var fimMiddle: Int32?
    var fimPad: Int32?
    var fimRepo: Int32?
    var fimSeparator: Int32?
  }

  /// What llama.cpp derives from the token texts.
  struct Derived {
    /// `special_eog_ids`, sorted.
    var endOfGeneration: [Int32]
    /// The token types after llama.cpp's changes.
    var types: [Int]
  }

  /// llama.cpp's `special_eog_ids` for a vocabulary, and the token types as its loader leaves
  /// them (`llama_vocab::impl::load`):
  ///
  /// - a token found by text for end of turn / message or a FIM role (when the metadata names
  ///   none; the first text of the role's list present: llama.cpp scans an unordered map) and
  ///   every token whose text is on the end-of-generation list becomes CONTROL (so special), as
  ///   llama.cpp overrides "control-looking" tokens (Qwen2.5's NORMAL `</s>`);
  /// - the end-of-generation ids: the EOS, EOT and EOM ids, the FIM pad / repo / separator
  ///   tokens and the tokens on the list; without `<|end|>` next to `<|return|>` and
  ///   `<|call|>` (gpt-oss, solar-open; it becomes USER_DEFINED) and without `</s>` next to
  ///   `<|tool_response>` (gemma4; it becomes NORMAL);
  /// - gpt-oss's `<|channel|>`, `<|message|>`, `<|start|>`, `<|constrain|>` become USER_DEFINED.
  /// - Parameters:
  ///   - types: `tokenizer.ggml.token_type`, one per token.
  ///   - idOfText: token text → id (the vocabulary's texts are unique).
  static func derive(tokens: [String], types: [Int], idOfText: [String: Int32], ids: MetadataIDs) -> Derived {
    var types = types
    func set(_ id: Int32, _ type: TokenType) { types[Int(id)] = type.rawValue }
    func detect(_ given: Int32?, _ texts: [String]) -> Int32? {
      if let given { return given }
      guard let found = texts.lazy.compactMap({ idOfText[$0] }).first else { return nil }
      set(found, .control)
      return found
    }
    let eot = detect(ids.eot, endOfTurnTexts)
    let eom = detect(ids.eom, endOfMessageTexts)
    _ = detect(ids.fimPrefix, fimPrefixTexts)
    _ = detect(ids.fimSuffix, fimSuffixTexts)
    _ = detect(ids.fimMiddle, fimMiddleTexts)
    var eog = Set<Int32>()
    for (given, texts) in [(ids.fimPad, fimPadTexts), (ids.fimRepo, fimRepoTexts), (ids.fimSeparator, fimSeparatorTexts)] {
      if let id = detect(given, texts) { eog.insert(id) }
    }
    for text in endOfGenerationTexts {
      guard let id = idOfText[text] else { continue }
      eog.insert(id)
      set(id, .control)
    }
    for text in alwaysPrintedTexts { if let id = idOfText[text] { set(id, .userDefined) } }
    for id in [ids.eos, eot, eom] { if let id { eog.insert(id) } }

    var byText: [String: Int32] = [:]
    for id in eog { byText[tokens[Int(id)]] = id }
    let call = byText["<|call|>"] != nil || byText["<|calls|>"] != nil
    if let end = byText["<|end|>"], (byText["<|return|>"] != nil && call) || (call && byText["<|flush|>"] != nil) {
      eog.remove(end)
      set(end, .userDefined)
    }
    if byText["<|tool_response>"] != nil, let s = byText["</s>"] {
      eog.remove(s)
      set(s, .normal)
    }
    return Derived(endOfGeneration: eog.sorted(), types: types)
  }
}
