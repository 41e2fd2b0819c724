import Foundation

extension SafetensorsFile: WeightSource {
  public func load(_ name: String, shape: [Int], rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor {
    if rows == nil && columns == nil { return try float(name, shape: shape) }
    return try floatSlice(name, expectedShape: shape, rows: rows, columns: columns)
  }
  public func finishedLoading() { dropResidentPages() }
}

/// Weights generated from a fixed seed (SplitMix64 → uniform in ±1/√fan_in, embeddings ±1;
/// norm scales near 1, biases small), identical on every rank, so demos and benchmarks need no files.
public struct RandomWeights: WeightSource {
  public let seed: UInt64
  public init(seed: UInt64) { self.seed = seed }

  public func load(_ name: String, shape: [Int], rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor {
    var h: UInt64 = seed ^ 0x9E37_79B9_7F4A_7C15
    for c in name.utf8 { h = (h ^ UInt64(c)) &* 0x100_0000_01B3 }
    let isScale = name.hasSuffix(".scale")
    let fanIn = shape.count == 2 ? shape[0] : 1
    let isEmbedding = name.hasSuffix(".embedding")
    let amp: Float = isScale ? 0.1 : isEmbedding ? 1 : (shape.count == 2 ? 1 / Float(fanIn).squareRoot() : 0.02)
    let r = rows ?? 0..<(shape.count == 2 ? shape[0] : 1)
    let cols = shape.last ?? 1
    let c = columns ?? 0..<cols
    var out = [Float](); out.reserveCapacity(r.count * c.count)
    for i in r {
      for j in c {
        var z = h &+ UInt64(i * cols + j) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let u = Float(z >> 40) / Float(1 << 24) * 2 - 1
        out.append(isScale ? 1 + amp * u : amp * u)
      }
    }
    return Tensor(shape: shape.count == 2 ? [r.count, c.count] : [c.count], data: out)
  }
}

/// A model directory: `config.json` + `model.safetensors` with the golden cases' names.
public struct ModelDirectory {
  public let config: BlockConfig
  public let weights: SafetensorsFile

  /// Opens and checks the directory: every tensor the config needs is present with its
  /// shape and dtype, and no unexpected tensor is there (refused, so a wrong file is caught).
  public init(_ dir: String) throws {
    let configPath = (dir as NSString).appendingPathComponent("config.json")
    config = try BlockConfig.load(configPath)
    let path = (dir as NSString).appendingPathComponent("model.safetensors")
    weights = try SafetensorsFile(path: path)
    let expected = BlockStack.parameterShapes(config)
    for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
      guard let info = weights.info(name) else { throw AttnaxError.tensor(name: name, message: "missing from \(path)") }
      guard info.dtype == "F32" else { throw AttnaxError.tensor(name: name, message: "dtype \(info.dtype), expected F32") }
      guard info.shape == shape else { throw AttnaxError.tensor(name: name, message: "shape \(info.shape), expected \(shape)") }
    }
    if let extra = weights.names.first(where: { expected[$0] == nil }) {
      throw AttnaxError.tensor(name: extra, message: "unexpected in \(path): this config (\(config.num_layers) layer(s), \(config.ff_activation.rawValue), \(config.norm_type.rawValue) norm) does not use it")
    }
  }
}
