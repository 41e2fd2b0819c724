import AttnaxFormats

/// The tokenizer and chat template of a GGUF file, from its `tokenizer.*` metadata: what
/// scripts/reference/gguf_tokenizer.py writes as tokenizer.json + tokenizer_config.json, built directly.
///
/// ```swift
/// let gguf = try GGUFFile(path: "SmolLM2-135M-Instruct.Q4_1.gguf")
/// let tok = try Tokenizer(gguf: gguf)
/// tok.encode("Hello world", addSpecialTokens: false)   // [19556, 905], llama.cpp's ids
/// tok.specialTokens.endOfGeneration                    // [0, 2, 4]
/// ```
///
/// - `tokenizer.ggml.model` must be `gpt2` (byte-level BPE); `tokenizer.ggml.pre` picks
///   llama.cpp's pre-tokenizer (``supportedPreTokenizers``); `tokenizer.ggml.tokens` and
///   `tokenizer.ggml.merges` are the vocabulary and the ranked merges.
/// - `tokenizer.ggml.token_type`: CONTROL and UNKNOWN tokens become special added tokens
///   (matched only when parsing special tokens, dropped by skip-special decoding),
///   USER_DEFINED tokens non-special added tokens (always matched), as llama.cpp treats them,
///   after the changes its loader makes (a "control-looking" token such as Qwen2.5's NORMAL
///   `</s>` becomes CONTROL; see `LlamaVocabularyRules.derive`).
/// - `tokenizer.ggml.{bos,eos,unknown,padding}_token_id` give the special tokens (BOS and EOS
///   default to 11, llama.cpp's default for a `gpt2` vocabulary); `add_bos_token` /
///   `add_eos_token` whether `encode` adds them (without the key, BOS for the Llama-3 family
///   only, as llama.cpp); `endOfGeneration` is llama.cpp's
///   end-of-generation set (EOS, EOT, EOM, the FIM pad / repo / separator tokens and the
///   tokens on its list of end texts); `tokenizer.chat_template` the chat template.
///
/// Every problem is one ``TokenizerError`` naming the file and the GGUF key
/// (`model.gguf: tokenizer.ggml.pre: "foo" is not supported (supported: ...)`).
extension Tokenizer {
  /// The `tokenizer.ggml.pre` values this tokenizer reproduces llama.cpp's splitting for.
  public static var supportedPreTokenizers: [String] { LlamaVocabularyRules.preTokenizations.keys.sorted() }

  /// Builds the tokenizer `file`'s metadata describes; errors name `file.path`.
  /// - Throws: ``TokenizerError`` naming the GGUF key at fault.
  public init(gguf file: GGUFFile) throws {
    try self.init(ggufMetadata: file.metadata, file: file.path)
  }

  /// Builds the tokenizer GGUF metadata describes (`tokenizer.ggml.*`, `tokenizer.chat_template`).
  /// - Parameter file: the name errors give the metadata's source.
  /// - Throws: ``TokenizerError`` naming the GGUF key at fault.
  public init(ggufMetadata metadata: [String: GGUFValue], file: String = "GGUF") throws {
    let fields = GGUFMetadataFields(metadata: metadata, file: file)
    let pre = try Self.ggufPreTokenization(fields)
    let (tokens, vocab) = try Self.ggufVocabulary(fields)
    let n = tokens.count
    let types = try Self.ggufTokenTypes(fields, count: n)
    let merges = try Self.ggufMerges(fields, vocab: vocab)

    func id(_ name: String) throws -> Int32? { try fields.tokenID("tokenizer.ggml.\(name)_token_id", count: n) }
    var bos = try id("bos")
    var eos = try id("eos")
    // llama.cpp's defaults for a gpt2 vocabulary without the key (disabled when out of range).
    if bos == nil, !fields.has("tokenizer.ggml.bos_token_id"), n > 11 { bos = 11 }
    if eos == nil, !fields.has("tokenizer.ggml.eos_token_id"), n > 11 { eos = 11 }
    let unknown = try id("unknown")
    let padding = try id("padding")
    let metadataIDs = LlamaVocabularyRules.MetadataIDs(
      eos: eos, eot: try id("eot"), eom: try id("eom"), fimPrefix: try id("prefix") ?? id("fim_pre"),
      fimSuffix: try id("suffix") ?? id("fim_suf"), fimMiddle: try id("middle") ?? id("fim_mid"), fimPad: try id("fim_pad"),
      fimRepo: try id("fim_rep"), fimSeparator: try id("fim_sep"))
    let derived = LlamaVocabularyRules.derive(tokens: tokens, types: types, idOfText: vocab, ids: metadataIDs)

    let addBOS = try fields.flag("tokenizer.ggml.add_bos_token") ?? pre.addBOS
    let addEOS = try fields.flag("tokenizer.ggml.add_eos_token") ?? false
    if addBOS, bos == nil {
      throw fields.error("tokenizer.ggml.add_bos_token", "true, but tokenizer.ggml.bos_token_id is not set")
    }
    if addEOS, eos == nil {
      throw fields.error("tokenizer.ggml.add_eos_token", "true, but tokenizer.ggml.eos_token_id is not set")
    }

    // tokenizer_config.json as gguf_tokenizer.py writes it.
    var config = TokenizerConfig()
    for (key, value) in [("bos_token", bos), ("eos_token", eos), ("pad_token", padding), ("unk_token", unknown)] {
      if let value { config.tokens[key] = tokens[Int(value)] }
    }
    config.addBOS = addBOS
    config.addEOS = addEOS
    config.eosTokenIDs = derived.endOfGeneration
    config.chatTemplate = try fields.string("tokenizer.chat_template")

    // The post-processor adds what add_bos / add_eos ask for (gguf_tokenizer.py writes a
    // TemplateProcessing then, else a ByteLevel one, which adds nothing).
    let postProcessor = PostProcessor.wrap(
      prefix: addBOS ? [bos].compactMap { $0 } : [], suffix: addEOS ? [eos].compactMap { $0 } : [])
    try self.init(
      model: .bpe(BPEModel(vocab: vocab, merges: merges, ignoreMerges: pre.ignoreMerges)), normalizer: nil,
      preTokenizer: pre.preTokenizer, postProcessor: postProcessor, decoder: .byteLevel,
      addedTokens: AddedTokens(Self.addedTokens(tokens: tokens, types: derived.types)),
      truncation: nil, config: config, files: (file, file))
  }

  /// `tokenizer.ggml.model` (only `gpt2`) and llama.cpp's splitting for `tokenizer.ggml.pre`.
  private static func ggufPreTokenization(_ fields: GGUFMetadataFields) throws -> LlamaVocabularyRules.PreTokenization {
    let modelKey = "tokenizer.ggml.model"
    guard let model = try fields.string(modelKey) else { throw fields.error(modelKey, "missing") }
    guard model == "gpt2" else {
      throw fields.error(modelKey, "\"\(Escaping.shown(model))\" is not supported (only \"gpt2\", byte-level BPE)")
    }
    let preKey = "tokenizer.ggml.pre"
    guard let pre = try fields.string(preKey) else {
      throw fields.error(preKey, "missing (llama.cpp would fall back to a degraded default)")
    }
    guard let known = LlamaVocabularyRules.preTokenizations[pre] else {
      throw fields.error(
        preKey, "\"\(Escaping.shown(pre))\" is not supported (supported: \(supportedPreTokenizers.joined(separator: ", ")))")
    }
    return known
  }

  /// `tokenizer.ggml.tokens`: the token texts (id order) and text → id; texts must be
  /// non-empty and distinct.
  private static func ggufVocabulary(_ fields: GGUFMetadataFields) throws -> ([String], [String: Int32]) {
    let key = "tokenizer.ggml.tokens"
    let tokens = try fields.strings(key)
    guard !tokens.isEmpty else { throw fields.error(key, "empty") }
    guard tokens.count <= 10_000_000 else { throw fields.error(key, "\(tokens.count) tokens: too many") }
    var vocab: [String: Int32] = [:]
    vocab.reserveCapacity(tokens.count)
    for (i, t) in tokens.enumerated() {
      if t.isEmpty { throw fields.error("\(key)[\(i)]", "empty token") }
      if let first = vocab.updateValue(Int32(i), forKey: t) {
        throw fields.error("\(key)[\(i)]", "\"\(Escaping.shown(t))\" repeats token \(first)")
      }
    }
    return (tokens, vocab)
  }

  /// `tokenizer.ggml.merges`, ranked in order: each `"left right"` (cut at the first space
  /// after the first character) with left, right and their concatenation in the vocabulary.
  private static func ggufMerges(_ fields: GGUFMetadataFields, vocab: [String: Int32]) throws -> [UInt64: BPEModel.Merge] {
    let key = "tokenizer.ggml.merges"
    let texts = try fields.strings(key)
    var merges: [UInt64: BPEModel.Merge] = [:]
    merges.reserveCapacity(texts.count)
    for (rank, text) in texts.enumerated() {
      guard let (left, right) = BPEModel.splitMerge(text) else {
        throw fields.error("\(key)[\(rank)]", "\"\(Escaping.shown(text))\" is not \"left right\"")
      }
      func id(_ part: String) throws -> Int32 {
        guard let id = vocab[part] else {
          throw fields.error("\(key)[\(rank)]", "\"\(Escaping.shown(part))\" is not in tokenizer.ggml.tokens")
        }
        return id
      }
      let pair = BPEModel.key(try id(left), try id(right))
      let merged = try id(left + right)
      // A repeated pair keeps its first (best) rank, as llama.cpp's `emplace` does.
      if merges[pair] == nil { merges[pair] = BPEModel.Merge(rank: Int32(rank), id: merged) }
    }
    return merges
  }

  /// `tokenizer.ggml.token_type`, one per token; every token NORMAL without the key (or with
  /// an empty list), as gguf_tokenizer.py reads it.
  private static func ggufTokenTypes(_ fields: GGUFMetadataFields, count: Int) throws -> [Int] {
    let key = "tokenizer.ggml.token_type"
    let types = try fields.integers(key) ?? []
    if types.isEmpty { return [Int](repeating: LlamaVocabularyRules.TokenType.normal.rawValue, count: count) }
    guard types.count >= count else { throw fields.error(key, "\(types.count) entries for \(count) tokens") }
    return Array(types.prefix(count))
  }

  /// The added tokens of the token types, as llama.cpp treats them: CONTROL and UNKNOWN tokens
  /// special (matched only when parsing special tokens), USER_DEFINED ones not (always matched).
  private static func addedTokens(tokens: [String], types: [Int]) -> [AddedToken] {
    var added: [AddedToken] = []
    for (i, t) in tokens.enumerated() {
      let special: Bool
      switch LlamaVocabularyRules.TokenType(rawValue: types[i]) {
      case .control?, .unknown?: special = true
      case .userDefined?: special = false
      default: continue
      }
      added.append(AddedToken(id: Int32(i), content: t, special: special, lstrip: false, rstrip: false, singleWord: false))
    }
    return added
  }
}
