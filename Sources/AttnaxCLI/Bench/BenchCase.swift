import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

/// One benchmark: a config and its shapes. `decode`: one new token per batch row after
/// `seq - 1` cached tokens.
struct BenchCase {
  static let presets = ["enc-base", "enc-long", "dec-llama", "xdec", "decode"]
  var name: String
  var config: BlockConfig
  var batch: Int
  var seq: Int
  var encoderSeq: Int?
  var decode = false

  /// Matrix-multiply FLOPs of one forward over the whole job (2 per multiply-add): projections,
  /// FFN, and attention QKᵀ and PV over the (query, key) pairs that are not masked (causal:
  /// query i sees keys 0...i). Norms, softmax, activations, RoPE are not counted.
  var flops: Double {
    let c = config
    let d = Double(c.dModel), dkv = Double(c.kvHeads * c.headDim), f = Double(c.dFF), b = Double(batch)
    let causal = c.scoreMods.contains(.causal)
    let newRows = decode ? 1 : seq
    let past = decode ? seq - 1 : 0
    let rows = b * Double(newRows)
    var per = 2 * rows * (2 * d * d + 2 * d * dkv)  // Q, O; K, V
    per += 2 * rows * d * f * (c.ffActivation.isGated ? 3 : 2)  // FFN
    let pairs: Double
    if causal {
      pairs = b * (0..<newRows).reduce(0.0) { $0 + Double(past + $1 + 1) }
    } else {
      pairs = b * Double(newRows) * Double(past + newRows)
    }
    per += 4 * d * pairs  // QKᵀ and PV over all heads
    if c.block == .decoder, let e = encoderSeq {
      per += 2 * rows * 2 * d * d + 2 * b * Double(e) * 2 * d * dkv  // cross Q, O; K, V
      per += 4 * d * b * Double(newRows) * Double(e)
    }
    return per * Double(c.numLayers)
  }

  /// Refuses a block whose weights and largest activations (float32: the input, Q/K/V and the
  /// output, the FFN hidden rows, and a standard attention's scores or a decode's KV cache)
  /// would not fit in this machine's memory, before anything is allocated: the sizes are the
  /// options', so an allocation that cannot succeed would otherwise end the process.
  func checkMemory() throws {
    let c = config
    let parameters = c.parameterShapes.values.reduce(0.0) { $0 + $1.reduce(1.0) { $0 * Double($1) } }
    let rows = Double(batch) * Double(seq) + Double(batch) * Double(encoderSeq ?? 0)
    var activations = rows * Double(5 * c.dModel + 3 * c.dFF)
    if c.attentionType == .standard {
      activations += Double(batch * c.numHeads) * Double(seq) * Double(max(seq, encoderSeq ?? 0))
    }
    if decode { activations += 2 * Double(c.numLayers * batch) * Double(seq) * Double(c.kvHeads * c.headDim) }
    let bytes = 4 * (parameters + activations)
    let memory = Memory.physicalBytes
    guard memory <= 0 || bytes <= memory else {
      throw ValidationError(
        String(
          format:
            "bench %@: this block needs about %.1f GiB (weights %.1f, activations %.1f), more than this machine's memory (%.1f GiB): lower --seq, --batch, --d-model, --d-ff or --layers",
          name, bytes / Double(1 << 30), 4 * parameters / Double(1 << 30), 4 * activations / Double(1 << 30),
          memory / Double(1 << 30)))
    }
  }

  var shapeText: String {
    let c = config
    var s = "\(c.block.rawValue) B\(batch) S\(seq)"
    if let e = encoderSeq, c.block == .decoder { s += " Senc\(e)" }
    s += " D\(c.dModel) H\(c.numHeads)"
    if let kv = c.numKVHeads { s += " kv\(kv)" }
    s += " dff\(c.dFF) \(c.ffActivation.rawValue) \(c.normType.rawValue) \(c.attentionType.rawValue)"
    if c.attentionType != .standard { s += "/\(c.attentionBlockSize)" }
    if c.useRoPE { s += " rope" }
    if c.scoreMods.contains(.causal) { s += " causal" }
    if c.numLayers > 1 { s += " x\(c.numLayers) layers" }
    if decode { s += " (decode: 1 new token, \(seq - 1) cached)" }
    return s
  }
}
