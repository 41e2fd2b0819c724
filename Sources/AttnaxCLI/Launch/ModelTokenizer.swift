import ArgumentParser
import AttnaxBlocks
import AttnaxFormats
import AttnaxTokenizers
import Foundation

/// A model's tokenizer, its errors as the launcher reports them (naming the file).
enum ModelTokenizer {
  /// `tokenizer.json` (and `tokenizer_config.json`) of `directory`.
  static func load(_ directory: String) throws -> Tokenizer {
    do {
      return try Tokenizer.load(directory: URL(fileURLWithPath: directory))
    } catch let e as TokenizerError {
      let path = (directory as NSString).appendingPathComponent(e.file)
      throw AttnaxError.file(path: path, message: e.field.isEmpty ? e.message : "\(e.field): \(e.message)")
    }
  }

  /// The tokenizer of an opened model: a GGUF file's own (`tokenizer.ggml.*`), or the folder's
  /// tokenizer files; nil when the folder has no tokenizer.json.
  static func load(_ checkpoint: ModelCheckpoint) throws -> Tokenizer? {
    switch checkpoint.source {
    case let .gguf(file):
      do {
        return try Tokenizer(gguf: file)
      } catch let e as TokenizerError {
        throw AttnaxError.file(path: file.path, message: e.field.isEmpty ? e.message : "\(e.field): \(e.message)")
      }
    case let .folder(dir):
      guard FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("tokenizer.json")) else {
        return nil
      }
      return try load(dir)
    }
  }
}

/// `--weights native|f32|q8_0`: how the weights are held in memory (``WeightStorage``).
enum WeightsOption: String, CaseIterable, ExpressibleByArgument {
  case native, f32, q8_0

  /// The option's help text.
  static let help =
    "How weights are held: native (a GGUF's quantized blocks as shipped; float files as float32), f32 (dequantized or converted to float32 at load), q8_0 (quantized to Q8_0 at load)."

  /// The storage the loaders take.
  var storage: WeightStorage {
    switch self {
    case .native: .native
    case .f32: .float32
    case .q8_0: .q8_0
    }
  }
}

/// Where a model's tokenizer and chat template come from, for messages: a folder's files, or a
/// GGUF file's `tokenizer.*` metadata.
enum TokenizerOrigin {
  case folder(String)
  case gguf(String)

  init(_ checkpoint: ModelCheckpoint) {
    switch checkpoint.source {
    case let .gguf(file): self = .gguf(file.path)
    case let .folder(dir): self = .folder(dir)
    }
  }

  /// The file that holds `name` (tokenizer.json, tokenizer_config.json): the folder's, or the GGUF.
  func file(_ name: String) -> String {
    switch self {
    case let .folder(dir): return (dir as NSString).appendingPathComponent(name)
    case let .gguf(path): return path
    }
  }

  /// The key of the chat template in that file.
  var templateKey: String {
    if case .gguf = self { return "tokenizer.chat_template" }
    return "chat_template"
  }
}
