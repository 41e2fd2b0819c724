import AttnaxFormats

/// Inputs of one block call, under the golden files' names.
public struct BlockInputs {
  /// (batch, seq, d_model).
  public var x: Tensor
  /// Decoder only: (batch, seq_kv, d_model).
  public var encoderOutput: Tensor?
  /// Self-attention mask (`mask` for encoders, `self_mask` for decoders).
  public var selfMask: MaskTensor?
  /// Decoder cross-attention mask.
  public var crossMask: MaskTensor?
  /// RoPE positions of self-attention (`position_ids` / `position_ids_self`).
  public var positions: IntTensor?
  /// Decoder cross-attention RoPE positions of the queries.
  public var crossQPositions: IntTensor?
  /// Decoder cross-attention RoPE positions of the encoder output.
  public var crossKVPositions: IntTensor?
  /// Extra named tensors (additive-bias score mods).
  public var tensors: [String: Tensor]

  /// The inputs of one call: `x` and whichever of the others the model reads.
  public init(
    x: Tensor, encoderOutput: Tensor? = nil, selfMask: MaskTensor? = nil, crossMask: MaskTensor? = nil,
    positions: IntTensor? = nil, crossQPositions: IntTensor? = nil, crossKVPositions: IntTensor? = nil,
    tensors: [String: Tensor] = [:]
  ) {
    self.x = x; self.encoderOutput = encoderOutput; self.selfMask = selfMask; self.crossMask = crossMask
    self.positions = positions; self.crossQPositions = crossQPositions; self.crossKVPositions = crossKVPositions
    self.tensors = tensors
  }

  func lookup(_ name: String) throws -> Tensor {
    guard let t = tensors[name] else {
      throw AttnaxError.input(name: name, message: "tensor named by an additive_bias score mod is missing")
    }
    return t
  }
}
