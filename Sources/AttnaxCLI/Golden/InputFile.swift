import AttnaxBlocks
import AttnaxFormats

/// Reads block inputs from a safetensors file under the golden names.
public enum InputFile {
  /// The tensor names a model with `config` reads from an input file: `x`, and for decoders
  /// `encoder_output`; the masks and position ids; additive-bias tensors its score mods name.
  public static func names(config: BlockConfig) -> [String] {
    var out = ["x"]
    if config.block == .decoder {
      out += ["encoder_output", "self_mask", "cross_mask", "position_ids_self", "position_ids_cross_q", "position_ids_cross_kv"]
    } else {
      out += ["mask", "position_ids"]
    }
    for case let .additiveBias(t) in config.scoreMods where !out.contains(t) { out.append(t) }
    return out
  }

  /// Reads the inputs of one call, refusing any tensor in the file that the model would not
  /// read (a decoder given `mask` instead of `self_mask` must not run without its mask).
  public static func readAll(_ io: SafetensorsFile, config: BlockConfig) throws -> BlockInputs {
    let readable = names(config: config)
    if let unread = io.names.first(where: { !readable.contains($0) }) {
      throw AttnaxError.tensor(
        name: Escaping.shown(unread),
        message:
          "in \(io.path) is not read by this \(config.block.rawValue) model (it reads: \(readable.joined(separator: ", ")))")
    }
    return try Self.read(io, config: config)
  }

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
    for case let .additiveBias(t) in config.scoreMods {
      guard let n = name(t) else {
        throw AttnaxError.tensor(name: t, message: "named by an additive_bias score mod but missing from \(io.path)")
      }
      inputs.tensors[t] = try io.float(n)
    }
    return inputs
  }
}
