import AttnaxFormats

/// Per-call inputs of one attention sub-layer (names are used in error messages).
public struct AttentionInputs {
  public var mask: MaskTensor?
  public var maskName: String
  public var positionsQ: IntTensor?
  public var positionsKV: IntTensor?
  public var positionsName: String
  /// Name of `positionsKV` in errors (defaults to `positionsName`).
  public var positionsKVName: String?
  /// First default query position when `positionsQ` is nil and no cache says otherwise:
  /// cross-attention in a KV-cache step continues after the tokens cached before the step.
  public var positionStart: Int = 0
  /// Resolves `additive_bias` tensor names.
  public var lookup: (String) throws -> Tensor

  public init(mask: MaskTensor? = nil, maskName: String = "mask", positionsQ: IntTensor? = nil,
              positionsKV: IntTensor? = nil, positionsName: String = "position_ids",
              lookup: @escaping (String) throws -> Tensor = { throw AttnaxError.tensor(name: $0, message: "missing") }) {
    self.mask = mask; self.maskName = maskName; self.positionsQ = positionsQ
    self.positionsKV = positionsKV; self.positionsName = positionsName; self.lookup = lookup
  }
}
