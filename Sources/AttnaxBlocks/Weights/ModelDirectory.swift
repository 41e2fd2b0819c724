import AttnaxFormats
import Foundation

/// A configuration a model directory can hold: it names every tensor it reads.
public protocol ModelConfiguration: Decodable, Sendable {
  /// Every tensor name and full shape this configuration reads.
  var parameterShapes: [String: [Int]] { get }
  /// A few words for errors, e.g. "2 layer(s), swiglu, rms norm".
  var summary: String { get }
}

/// A model directory: `config.json` and `model.safetensors` (float32, attnax's names).
///
/// Opening it checks that every tensor the config reads is present with its shape and dtype,
/// and refuses any tensor the config does not read (a wrong file is caught, not half used).
public struct ModelDirectory<Config: ModelConfiguration>: Sendable {
  /// The directory.
  public let path: String
  /// The decoded and validated config.json.
  public let config: Config
  /// The weights, header validated, data mapped lazily.
  public let weights: SafetensorsFile

  /// Opens and checks `dir`.
  public init(_ dir: String) throws {
    path = dir
    config = try JSONFile.decode(Config.self, path: (dir as NSString).appendingPathComponent("config.json"))
    let file = (dir as NSString).appendingPathComponent("model.safetensors")
    weights = try SafetensorsFile(path: file)
    let expected = config.parameterShapes
    for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
      guard let info = weights.info(name) else { throw AttnaxError.tensor(name: name, message: "missing from \(file)") }
      guard info.dtype == "F32" else { throw AttnaxError.tensor(name: name, message: "dtype \(info.dtype), expected F32") }
      guard info.shape == shape else { throw AttnaxError.tensor(name: name, message: "shape \(info.shape), expected \(shape)") }
    }
    if let extra = weights.names.first(where: { expected[$0] == nil }) {
      throw AttnaxError.tensor(name: extra, message: "unexpected in \(file): this config (\(config.summary)) does not use it")
    }
  }

  /// A file beside config.json, if present (tokenizer.json, tokenizer_config.json, ...).
  public func file(_ name: String) -> String? {
    let p = (path as NSString).appendingPathComponent(name)
    return FileManager.default.fileExists(atPath: p) ? p : nil
  }
}
