import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

/// One golden case directory: config.json, model.safetensors, io.safetensors, meta.json
/// (the format of attnax's reference cases; Tests/Fixtures/golden/README.md).
public struct GoldenCase: Sendable {
  /// The folder's name.
  public let name: String
  /// The folder.
  public let directory: String
  /// config.json and model.safetensors, checked against each other.
  public let model: ModelDirectory<BlockConfig>
  /// Inputs and expected outputs.
  public let io: SafetensorsFile
  /// meta.json's atol and rtol.
  public let tolerance: Tolerance

  /// meta.json: the description and tolerance (other keys are allowed).
  struct Meta: Decodable {
    var atol: Float
    var rtol: Float
  }

  /// Opens and checks the case folder `dir`.
  public init(_ dir: String) throws {
    let d = dir.hasSuffix("/") ? String(dir.dropLast()) : dir
    directory = d
    name = (d as NSString).lastPathComponent
    model = try ModelDirectory(d)
    io = try SafetensorsFile(path: (d as NSString).appendingPathComponent("io.safetensors"))
    let meta = try JSONFile.decode(
      Meta.self, path: (d as NSString).appendingPathComponent("meta.json"), expected: "a JSON object with numbers atol and rtol")
    tolerance = Tolerance(atol: meta.atol, rtol: meta.rtol)
  }

  /// The number of calls: KV-cache steps, or 1.
  public var steps: Int { model.config.kvCache?.steps ?? 1 }

  /// Inputs of step `k` (prefixed `step{k}.` in KV-cache cases, falling back to unprefixed).
  public func inputs(step k: Int) throws -> BlockInputs {
    try InputFile.read(io, config: model.config, prefix: model.config.kvCache == nil ? "" : "step\(k).")
  }

  /// Expected output of step `k`.
  public func expected(step k: Int) throws -> Tensor {
    try io.float(model.config.kvCache == nil ? "y" : "step\(k).y")
  }

  /// Runs every step through `stack` (one KV cache per layer for cache cases) and compares each
  /// step's gathered output with the expected one; the report covers all steps.
  public func check(_ stack: BlockStack, inputs steps: [BlockInputs]) throws -> Tolerance.Report {
    let caches = model.config.kvCache.map { stack.makeCaches(batch: steps.first?.x.shape[0] ?? 1, maxLen: $0.maxLen) }
    var worst = Tolerance.Report(maxAbsError: 0, worstRatio: 0)
    for (k, step) in steps.enumerated() {
      let y = try stack.forward(step, caches: caches)
      let want = try expected(step: k)
      guard y.shape == want.shape else {
        throw AttnaxError.tensor(name: "y", message: "computed shape \(y.shape) but expected \(want.shape)")
      }
      worst = worst.merged(with: tolerance.compare(got: y.data, want: want.data))
    }
    return worst
  }

  /// Runs the case with heads over `group` and rows over `cp` (no agreements: for tests).
  public func run(group: Communicator, cp: Communicator = .solo()) throws -> Tolerance.Report {
    let stack = try BlockStack(config: model.config, source: model.weights, group: group, cp: cp)
    return try check(stack, inputs: try (0..<steps).map { try inputs(step: $0) })
  }
}
