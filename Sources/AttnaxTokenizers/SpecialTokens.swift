import AttnaxFormats

/// The special tokens of a model, resolved to ids.
public struct SpecialTokens: Sendable, Equatable {
  /// Beginning of sequence (`bos_token`), e.g. SmolLM2's `<|im_start|>` = 1.
  public var bos: Int32?
  /// End of sequence (`eos_token`), e.g. SmolLM2's `<|im_end|>` = 2.
  public var eos: Int32?
  /// Every id that ends generation (`eos_token_ids` in tokenizer_config.json; `[eos]` when
  /// absent). For SmolLM2 llama.cpp stops at `<|endoftext|>` 0, `<|im_end|>` 2 and
  /// `<reponame>` 4.
  public var endOfGeneration: [Int32]
  /// Padding (`pad_token`).
  public var pad: Int32?
  /// Unknown (`unk_token`, WordPiece's `[UNK]`).
  public var unk: Int32?
  /// BERT's `[CLS]`.
  public var cls: Int32?
  /// BERT's `[SEP]`.
  public var sep: Int32?
  /// BERT's `[MASK]`.
  public var mask: Int32?
  /// The text of `bos_token`, for chat templates.
  public var bosText: String?
  /// The text of `eos_token`, for chat templates.
  public var eosText: String?
  /// Whether encoding with special tokens adds `bos` (`add_bos_token`; used only when
  /// tokenizer.json has no post-processor).
  public var addBOS: Bool
  /// Whether encoding with special tokens adds `eos` (`add_eos_token`; likewise).
  public var addEOS: Bool
}

/// What tokenizer_config.json says (all optional).
struct TokenizerConfig {
  var tokens: [String: String] = [:]
  var addBOS: Bool?
  var addEOS: Bool?
  var eosTokenIDs: [Int32]?
  var chatTemplate: String?

  static let tokenKeys = ["bos_token", "eos_token", "pad_token", "unk_token", "cls_token", "sep_token", "mask_token"]

  /// Reads tokenizer_config.json.
  static func load(_ root: JSONField) throws -> TokenizerConfig {
    var c = TokenizerConfig()
    for key in tokenKeys {
      guard let f = try root.member(key) else { continue }
      switch f.value {
      case let .string(s): c.tokens[key] = s
      case .object: c.tokens[key] = try f.require("content").string()
      default: throw f.error("expected a string or {\"content\": ...}, found \(f.value.kindName)")
      }
    }
    c.addBOS = try root.member("add_bos_token")?.bool()
    c.addEOS = try root.member("add_eos_token")?.bool()
    if let ids = try root.member("eos_token_ids") {
      c.eosTokenIDs = try ids.array().map { try $0.tokenID() }
    }
    if let t = try root.member("chat_template") {
      switch t.value {
      case let .string(s): c.chatTemplate = s
      case .array:
        // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
        var named: [String: String] = [:]
        for entry in try t.array() {
          named[try entry.require("name").string()] = try entry.require("template").string()
        }
        guard let d = named["default"] ?? named.values.first else { throw t.error("no template named \"default\"") }
        c.chatTemplate = d
      default: throw t.error("expected a string or a list of named templates, found \(t.value.kindName)")
      }
    }
    return c
  }
}
