import AttnaxFormats
import Foundation

/// A tokenizer read from a model directory in the Hugging Face `tokenizers` format: byte-level
/// BPE (SmolLM2, GPT-2, Llama-3 families) or WordPiece (BERT).
///
/// ```swift
/// let tok = try Tokenizer.load(directory: URL(fileURLWithPath: modelDir))
/// let ids = tok.encode("Hello world")            // [19556, 905] for SmolLM2
/// let text = tok.decode(ids)                     // "Hello world"
/// ```
///
/// Encoding follows the HF pipeline: added tokens are split out of the raw text (longest
/// match first), the rest is normalized, pre-tokenized into words and each word encoded by
/// the model; then truncation and the post-processor's special tokens. A `Tokenizer` is an
/// immutable value; it may be shared between threads (its word cache is internally locked).
public struct Tokenizer: Sendable {
  enum Model: Sendable {
    case bpe(BPEModel)
    case wordPiece(WordPieceModel)
  }

  let model: Model
  let normalizer: Normalizer?
  let preTokenizer: PreTokenizer?
  let postProcessor: PostProcessor?
  let decoder: Decoder?
  let addedTokens: AddedTokens
  let truncation: Truncation?
  /// id → token text (vocabulary and added tokens); nil for unused ids.
  let idToToken: [String?]
  let tokenToID: [String: Int32]
  /// The ids of special added tokens.
  let specialIDs: Set<Int32>

  /// The model's special tokens.
  public let specialTokens: SpecialTokens
  /// The Jinja chat template of tokenizer_config.json, if any.
  public let chatTemplateSource: String?

  /// Loads `tokenizer.json` and, when present, `tokenizer_config.json` from `directory`.
  ///
  /// When the directory also holds a sentence-transformers `sentence_bert_config.json`, its
  /// `max_seq_length` replaces tokenizer.json's truncation length (what sentence-transformers
  /// does). Padding settings are ignored: `encode` never pads.
  /// - Throws: `TokenizerError` naming the file and field at fault.
  public static func load(directory: URL) throws -> Tokenizer {
    /// The file's bytes, or nil when the directory has no such file.
    func read(_ name: String) throws -> [UInt8]? {
      let url = directory.appendingPathComponent(name)
      guard FileManager.default.fileExists(atPath: url.path) else { return nil }
      do {
        return [UInt8](try Data(contentsOf: url))
      } catch {
        throw TokenizerError(file: name, field: "", message: "cannot read \(url.path): \(error.localizedDescription)")
      }
    }
    guard let tokenizerJSON = try read("tokenizer.json") else {
      throw TokenizerError(file: "tokenizer.json", field: "", message: "not found in \(directory.path)")
    }
    let config = try read("tokenizer_config.json")
    var maxLength: Int? = nil
    if let st = try read("sentence_bert_config.json") {
      let root = JSONField(try JSONValue.parse(st, file: "sentence_bert_config.json"), file: "sentence_bert_config.json")
      maxLength = try root.optionalInt("max_seq_length")
    }
    return try Tokenizer(tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: config, maxSequenceLength: maxLength)
  }

  /// Builds a tokenizer from the bytes of tokenizer.json and (optionally) tokenizer_config.json.
  /// - Parameter maxSequenceLength: when set, truncate encodings to this many ids (special
  ///   tokens included), overriding tokenizer.json's `truncation`.
  public init(tokenizerJSON: [UInt8], tokenizerConfigJSON: [UInt8]? = nil, maxSequenceLength: Int? = nil) throws {
    let file = "tokenizer.json"
    let root = JSONField(try JSONValue.parse(tokenizerJSON, file: file), file: file)
    let m = try root.require("model")
    let type = try m.optionalString("type") ?? (try m.member("merges") != nil ? "BPE" : "WordPiece")
    let model: Model
    switch type {
    case "BPE": model = .bpe(try BPEModel(m))
    case "WordPiece": model = .wordPiece(try WordPieceModel(m))
    default: throw try m.require("type").error("unsupported model \"\(type)\" (supported: BPE, WordPiece)")
    }
    let normalizer = try root.member("normalizer").map(Normalizer.load)
    let preTokenizer = try root.member("pre_tokenizer").map(PreTokenizer.load)
    let postProcessor = try root.member("post_processor").map(PostProcessor.load)
    let decoder = try root.member("decoder").map(Decoder.load)
    let addedTokens = try AddedTokens.load(root.member("added_tokens"))
    let truncation: Truncation?
    if let maxSequenceLength {
      guard maxSequenceLength > 0 else {
        throw TokenizerError(file: "sentence_bert_config.json", field: "max_seq_length", message: "must be positive")
      }
      truncation = Truncation(maxLength: maxSequenceLength, keepFirst: true)
    } else {
      truncation = try root.member("truncation").map(Truncation.load)
    }
    let configFile = "tokenizer_config.json"
    let config =
      try tokenizerConfigJSON.map { try TokenizerConfig.load(JSONField(JSONValue.parse($0, file: configFile), file: configFile)) }
      ?? TokenizerConfig()
    try self.init(
      model: model, normalizer: normalizer, preTokenizer: preTokenizer, postProcessor: postProcessor, decoder: decoder,
      addedTokens: addedTokens, truncation: truncation, config: config, files: (file, configFile))
  }

  /// Builds a tokenizer from its parts: the one place the id tables and the special tokens are
  /// resolved, for tokenizer files and GGUF metadata alike.
  /// - Parameter files: the names errors give the vocabulary's source and the config's.
  init(
    model: Model, normalizer: Normalizer?, preTokenizer: PreTokenizer?, postProcessor: PostProcessor?, decoder: Decoder?,
    addedTokens: AddedTokens, truncation: Truncation?, config: TokenizerConfig, files: (vocabulary: String, config: String)
  ) throws {
    self.model = model
    self.normalizer = normalizer
    self.preTokenizer = preTokenizer
    self.postProcessor = postProcessor
    self.decoder = decoder
    self.addedTokens = addedTokens
    self.truncation = truncation

    // id <-> token over the vocabulary and the added tokens.
    // An added token may reuse a vocabulary token's text with another id: both ids decode to
    // it, and the added one wins for encoding.
    let vocab: [String: Int32]
    switch model {
    case let .bpe(b): vocab = b.vocab
    case let .wordPiece(w): vocab = w.vocab
    }
    var tokenToID = vocab
    for t in addedTokens.tokens { tokenToID[t.content] = t.id }
    let maxID = max(vocab.values.max() ?? -1, addedTokens.tokens.map(\.id).max() ?? -1)
    guard maxID < 10_000_000 else {
      throw TokenizerError(file: files.vocabulary, field: "", message: "token ids up to \(maxID): too large")
    }
    var idToToken = [String?](repeating: nil, count: Int(maxID) + 1)
    for (t, id) in vocab { idToToken[Int(id)] = t }
    for t in addedTokens.tokens { idToToken[Int(t.id)] = t.content }
    self.idToToken = idToToken
    self.tokenToID = tokenToID
    specialIDs = Set(addedTokens.tokens.filter(\.special).map(\.id))

    // tokenizer_config.json
    let configFile = files.config
    func id(_ key: String, fallback: String? = nil) throws -> Int32? {
      guard let text = config.tokens[key] ?? fallback else { return nil }
      guard let id = tokenToID[text] else {
        if config.tokens[key] == nil { return nil }
        throw TokenizerError(file: configFile, field: key, message: "\"\(text)\" is not a token of \(files.vocabulary)")
      }
      return id
    }
    var unkFallback: String? = nil
    if case let .wordPiece(w) = model { unkFallback = idToToken[Int(w.unkID)] ?? nil }
    if case let .bpe(b) = model, let u = b.unkID { unkFallback = idToToken[Int(u)] ?? nil }
    let eos = try id("eos_token")
    let eosIDs = config.eosTokenIDs ?? eos.map { [$0] } ?? []
    for (k, e) in eosIDs.enumerated() where Int(e) >= idToToken.count || idToToken[Int(e)] == nil {
      throw TokenizerError(file: configFile, field: "eos_token_ids[\(k)]", message: "\(e) is not a token id")
    }
    specialTokens = SpecialTokens(
      bos: try id("bos_token"), eos: eos, endOfGeneration: eosIDs, pad: try id("pad_token"),
      unk: try id("unk_token", fallback: unkFallback), cls: try id("cls_token", fallback: "[CLS]"),
      sep: try id("sep_token", fallback: "[SEP]"), mask: try id("mask_token", fallback: "[MASK]"),
      bosText: config.tokens["bos_token"], eosText: config.tokens["eos_token"],
      addBOS: config.addBOS ?? false, addEOS: config.addEOS ?? false)
    chatTemplateSource = config.chatTemplate
  }

  // MARK: - Lookups

  /// The number of token ids (the largest id + 1).
  public var vocabularySize: Int { idToToken.count }

  /// The id of a token's text (vocabulary or added token), e.g. `"<|im_end|>"` → 2.
  public func id(forToken token: String) -> Int32? { tokenToID[token] }

  /// The text of a token id as stored in the vocabulary (byte-level tokens show GPT-2's
  /// byte characters, e.g. `"Ġworld"`); nil for an unknown id.
  public func token(forID id: Int32) -> String? {
    guard id >= 0, Int(id) < idToToken.count else { return nil }
    return idToToken[Int(id)]
  }

  /// The most ids `encode` returns with special tokens (tokenizer.json's truncation, or
  /// sentence_bert_config.json's `max_seq_length`); nil when encodings are not truncated.
  public var maxSequenceLength: Int? { truncation?.maxLength }

  /// Whether `id` is a special added token (`<|im_end|>`, `[CLS]`, ...).
  public func isSpecial(_ id: Int32) -> Bool { specialIDs.contains(id) }

  /// The added tokens (special or not), in tokenizer.json order.
  public var addedTokenList: [AddedToken] { addedTokens.tokens }

  // MARK: - Encode / decode

  /// The ids of `text`.
  /// - Parameters:
  ///   - addSpecialTokens: add the post-processor's tokens (`[CLS] ... [SEP]`), or without a
  ///     post-processor the BOS/EOS that tokenizer_config.json's `add_bos_token` /
  ///     `add_eos_token` ask for; truncation leaves room for them.
  ///   - parseSpecial: recognise special tokens written in the text (`<|im_start|>`); when
  ///     false they are encoded as ordinary text (non-special added tokens are always matched).
  public func encode(_ text: String, addSpecialTokens: Bool = true, parseSpecial: Bool = true) -> [Int32] {
    var ids: [Int32] = []
    ids.reserveCapacity(text.utf8.count / 3 + 4)
    for fragment in addedTokens.split(text, parseSpecial: parseSpecial) {
      switch fragment {
      case let .token(id): ids.append(id)
      case let .text(raw): encodeText(raw, into: &ids)
      }
    }
    var reserved = 0
    if addSpecialTokens {
      if let p = postProcessor {
        reserved = p.addedCount
      } else {
        reserved =
          (specialTokens.addBOS && specialTokens.bos != nil ? 1 : 0) + (specialTokens.addEOS && specialTokens.eos != nil ? 1 : 0)
      }
    }
    if let truncation { ids = truncation.apply(ids, reserved: reserved) }
    guard addSpecialTokens else { return ids }
    if let p = postProcessor { return p.apply(ids) }
    if specialTokens.addBOS, let bos = specialTokens.bos { ids.insert(bos, at: 0) }
    if specialTokens.addEOS, let eos = specialTokens.eos { ids.append(eos) }
    return ids
  }

  /// Normalizes, pre-tokenizes and encodes text that holds no added tokens.
  private func encodeText(_ raw: String, into ids: inout [Int32]) {
    let text = normalizer?.apply(raw) ?? raw
    if text.isEmpty { return }
    var words = [Array(text.unicodeScalars)]
    if let preTokenizer { words = preTokenizer.apply(words) }
    switch model {
    case let .bpe(b): for w in words { b.encode(word: w, into: &ids) }
    case let .wordPiece(wp): for w in words { wp.encode(word: w, into: &ids) }
    }
  }

  /// The text of `ids`. Unknown ids are skipped; with `skipSpecial`, so are special added
  /// tokens. Invalid UTF-8 (a byte-level sequence cut short) becomes U+FFFD.
  public func decode(_ ids: [Int32], skipSpecial: Bool = false) -> String {
    let tokens = tokenTexts(ids, skipSpecial: skipSpecial)
    guard let decoder else { return tokens.joined(separator: " ") }
    return decoder.decodeChain(tokens).joined()
  }

  /// The token texts `decode` feeds its decoder.
  func tokenTexts(_ ids: [Int32], skipSpecial: Bool) -> [String] {
    ids.compactMap { id in
      if skipSpecial && specialIDs.contains(id) { return nil }
      return token(forID: id)
    }
  }

  /// A streaming decoder for printing generated ids as they arrive.
  public func makeStreamingDetokenizer(skipSpecial: Bool = false) -> StreamingDetokenizer {
    StreamingDetokenizer(tokenizer: self, skipSpecial: skipSpecial)
  }

  // MARK: - Chat

  /// The parsed chat template, or nil when tokenizer_config.json has none.
  /// - Throws: `ChatTemplateError.syntax` when the template does not parse.
  public func chatTemplate() throws -> ChatTemplate? {
    try chatTemplateSource.map { try ChatTemplate($0) }
  }

  /// The prompt text for `messages` rendered with the model's chat template, with
  /// `bos_token` / `eos_token` set from tokenizer_config.json.
  /// - Throws: `ChatTemplateError` (including the template's own `raise_exception`), or
  ///   `.runtime` when the model has no chat template.
  public func applyChatTemplate(
    messages: [ChatMessage], addGenerationPrompt: Bool = true, extraContext: [String: JinjaValue] = [:]
  ) throws -> String {
    guard let template = try chatTemplate() else {
      throw ChatTemplateError.runtime(line: 0, message: "the model has no chat template (tokenizer_config.json: chat_template)")
    }
    return try template.render(
      messages: messages, addGenerationPrompt: addGenerationPrompt, bosToken: specialTokens.bosText ?? "",
      eosToken: specialTokens.eosText ?? "", extraContext: extraContext)
  }
}
