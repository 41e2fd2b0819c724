import AttnaxBlocks
import AttnaxFormats
import Foundation

/// What a command needs of a model, checked from its configuration before the weights or the
/// tokenizer are read: `generate` a causal language model (a `transformer_decoder`,
/// whose LM head gives the next token's logits), `embed` a sentence-embedding model (a
/// `transformer_encoder` with `pooling`). A model of the other kind would run and print
/// garbage, so it is refused naming the config field and its value.
enum ModelUse: String {
  case generate, embed
  /// `attnax serve`: a language model (chat, completions) or a sentence encoder (embeddings).
  case serve

  /// Opens `path` as a model for this use: a GGUF file, a Hugging Face folder or an attnax model
  /// directory (``ModelCheckpoint``), its kind checked. An attnax directory's config is checked
  /// before its weights are opened.
  func open(_ path: String, storage: WeightStorage = .native) throws -> ModelCheckpoint {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
      throw LaunchError.option("--model", "'\(path)' does not exist")
    }
    if isFolder.boolValue {
      // An attnax directory's config.json, read once: its kind is checked before the weights.
      let file = (path as NSString).appendingPathComponent("config.json")
      if let bytes = FileManager.default.contents(atPath: file), let json = try? JSONValue.parse(Array(bytes)) {
        try refuseBlockStack(json)
        if json["model"] != nil, json["model_type"] == nil {
          try check(try JSONFile.decode(TransformerConfig.self, from: Data(bytes), path: file))
        }
      }
    } else if let handle = FileHandle(forReadingAtPath: path) {
      let magic = (try? handle.read(upToCount: 4)) ?? Data()
      try? handle.close()
      guard magic == Data("GGUF".utf8) else {
        throw LaunchError.option(
          "--model",
          "'\(path)' is a file but not a GGUF file: give a GGUF file or a model folder (config.json, model.safetensors)")
      }
    }
    let checkpoint = try ModelCheckpoint(path, storage: storage)
    try check(checkpoint.config)
    return checkpoint
  }

  /// Refuses a model of the wrong kind, naming the field and its value.
  func check(_ config: TransformerConfig) throws {
    switch self {
    case .generate:
      guard config.model == .transformerDecoder else {
        throw AttnaxError.config(
          field: "model",
          message:
            "is '\(config.model.rawValue)': generate needs a causal language model (transformer_decoder); an encoder has no next-token head (sentence embeddings: attnax embed)"
        )
      }
      guard config.pooling == .none else {
        throw AttnaxError.config(
          field: "pooling",
          message:
            "is '\(config.pooling.rawValue)': a sentence-embedding model, not a language model: generate cannot use it (attnax embed)"
        )
      }
    case .serve:
      if config.model == .transformerEncoder && config.pooling != .none { return }
      try ModelUse.generate.check(config)
    case .embed:
      guard config.model == .transformerEncoder else {
        throw AttnaxError.config(
          field: "model",
          message:
            "is '\(config.model.rawValue)': embed needs a sentence-embedding model (transformer_encoder with pooling mean or cls)"
        )
      }
      guard config.pooling != .none else {
        throw AttnaxError.config(
          field: "pooling",
          message: "is 'none': embed needs a sentence-embedding model (transformer_encoder with pooling mean or cls)")
      }
    }
  }

  /// A config.json of `attnax forward`'s block stacks (a `block` field, no `model`) is not a
  /// model: refused naming `block`, rather than with the first field a full model does not know.
  func refuseBlockStack(_ json: JSONValue) throws {
    guard json["model"] == nil, let block = json["block"] else { return }
    throw AttnaxError.config(
      field: "block",
      message:
        "is \(block.brief): this folder holds a block stack for attnax forward, not a model \(rawValue) can run (config.json has no 'model')"
    )
  }
}
