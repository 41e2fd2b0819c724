import AttnaxFormats
import AttnaxTokenizers
import Foundation

/// A model directory's tokenizer, its errors as the launcher reports them (naming the file).
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
}
