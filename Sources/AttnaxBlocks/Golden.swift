import AttnaxDist
import Foundation

/// |got − want| against atol + rtol·|want|: the largest absolute error and the worst
/// error/tolerance ratio (≤ 1 passes; NaN, Inf or a count mismatch give +∞).
public func toleranceReport(got: [Float], want: [Float], atol: Float, rtol: Float) -> (maxAbsError: Float, worstRatio: Float) {
  guard got.count == want.count else { return (.infinity, .infinity) }
  var maxErr: Float = 0, worst: Float = 0
  for i in 0..<got.count {
    let e = abs(got[i] - want[i])
    guard e.isFinite else { return (.infinity, .infinity) }
    maxErr = max(maxErr, e)
    worst = max(worst, e / (atol + rtol * abs(want[i])))
  }
  return (maxErr, worst)
}

/// One golden case directory: config.json, model.safetensors, io.safetensors, meta.json.
public struct GoldenCase {
  public let name: String
  public let directory: String
  public let model: ModelDirectory
  public let io: SafetensorsFile
  public let atol: Float
  public let rtol: Float

  public init(_ dir: String) throws {
    let d = dir.hasSuffix("/") ? String(dir.dropLast()) : dir
    directory = d
    name = (d as NSString).lastPathComponent
    model = try ModelDirectory(d)
    io = try SafetensorsFile(path: (d as NSString).appendingPathComponent("io.safetensors"))
    let metaPath = (d as NSString).appendingPathComponent("meta.json")
    guard let data = FileManager.default.contents(atPath: metaPath),
          let meta = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let atol = (meta["atol"] as? NSNumber)?.floatValue, let rtol = (meta["rtol"] as? NSNumber)?.floatValue
    else { throw AttnaxError.file(path: metaPath, message: "must be a JSON object with numbers atol and rtol") }
    self.atol = atol; self.rtol = rtol
  }

  /// The number of calls: KV-cache steps, or 1.
  public var steps: Int { model.config.kv_cache?.steps ?? 1 }

  /// Inputs of step `k` (prefixed `step{k}.` in KV-cache cases, falling back to unprefixed).
  public func inputs(step k: Int) throws -> BlockInputs {
    try InputFile.read(io, config: model.config, prefix: model.config.kv_cache == nil ? "" : "step\(k).")
  }

  /// Expected output of step `k`.
  public func expected(step k: Int) throws -> Tensor {
    try io.float(model.config.kv_cache == nil ? "y" : "step\(k).y")
  }
}

/// Reads block inputs from a safetensors file under the golden names.
public enum InputFile {
  /// `prefix` (e.g. `step2.`) is tried first for every name, then the bare name.
  public static func read(_ io: SafetensorsFile, config: BlockConfig, prefix: String = "") throws -> BlockInputs {
    func name(_ n: String) -> String? {
      if io.contains(prefix + n) { return prefix + n }
      return io.contains(n) ? n : nil
    }
    let dec = config.block == .decoder
    guard let xName = name("x") else { throw AttnaxError.tensor(name: prefix + "x", message: "missing from \(io.path)") }
    var inputs = BlockInputs(x: try io.float(xName))
    if dec, let n = name("encoder_output") { inputs.encoderOutput = try io.float(n) }
    if let n = name(dec ? "self_mask" : "mask") { inputs.selfMask = try io.mask(n) }
    if dec, let n = name("cross_mask") { inputs.crossMask = try io.mask(n) }
    if let n = name(dec ? "position_ids_self" : "position_ids") { inputs.positions = try io.int32(n) }
    if dec, let n = name("position_ids_cross_q") { inputs.crossQPositions = try io.int32(n) }
    if dec, let n = name("position_ids_cross_kv") { inputs.crossKVPositions = try io.int32(n) }
    for case let .additiveBias(t) in config.score_mods {
      guard let n = name(t) else { throw AttnaxError.tensor(name: t, message: "named by an additive_bias score mod but missing from \(io.path)") }
      inputs.tensors[t] = try io.float(n)
    }
    return inputs
  }
}

/// The outcome of one golden case.
public struct GoldenOutcome: Sendable {
  public let name: String
  public let maxAbsError: Float
  public let worstRatio: Float
  public var passed: Bool { worstRatio <= 1 }
}

extension GoldenCase {
  /// Runs every step with heads over `group` and rows over `cp`, and compares each step's
  /// gathered output with the expected one.
  public func run(group: Communicator, cp: Communicator = .solo()) throws -> GoldenOutcome {
    let stack = try BlockStack(config: model.config, source: model.weights, group: group, cp: cp)
    var maxErr: Float = 0, worst: Float = 0
    let caches: [KVCache]? = model.config.kv_cache.map { kc in
      let b = (try? inputs(step: 0).x.shape[0]) ?? 1
      return stack.makeCaches(batch: b, maxLen: kc.max_len)
    }
    for k in 0..<steps {
      let y = try stack.forward(try inputs(step: k), caches: caches)
      let want = try expected(step: k)
      guard y.shape == want.shape else {
        throw AttnaxError.tensor(name: "y", message: "computed shape \(y.shape) but expected \(want.shape)")
      }
      let r = toleranceReport(got: y.data, want: want.data, atol: atol, rtol: rtol)
      maxErr = max(maxErr, r.maxAbsError); worst = max(worst, r.worstRatio)
    }
    return GoldenOutcome(name: name, maxAbsError: maxErr, worstRatio: worst)
  }
}
