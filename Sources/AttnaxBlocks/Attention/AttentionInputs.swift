import AttnaxFormats

/// Per-call inputs of one attention sub-layer (names are used in error messages).
public struct AttentionInputs {
  /// The boolean mask, broadcast to (batch, heads, q, kv) with global rows and columns.
  public var mask: MaskTensor?
  /// The mask's name in errors (`mask`, `self_mask`, `cross_mask`).
  public var maskName: String
  /// RoPE positions of the queries (B, Sq), global.
  public var positionsQ: IntTensor?
  /// RoPE positions of the keys (B, Skv), global (cross-attention).
  public var positionsKV: IntTensor?
  /// Name of `positionsQ` in errors.
  public var positionsName: String
  /// Name of `positionsKV` in errors (defaults to `positionsName`).
  public var positionsKVName: String?
  /// First default query position when `positionsQ` is nil and no cache says otherwise:
  /// cross-attention in a KV-cache step continues after the tokens cached before the step.
  public var positionStart: Int = 0
  /// Resolves `additive_bias` tensor names.
  public var lookup: (String) throws -> Tensor

  /// The inputs of one call; every one may be absent.
  public init(
    mask: MaskTensor? = nil, maskName: String = "mask", positionsQ: IntTensor? = nil,
    positionsKV: IntTensor? = nil, positionsName: String = "position_ids",
    lookup: @escaping (String) throws -> Tensor = { throw AttnaxError.tensor(name: $0, message: "missing") }
  ) {
    self.mask = mask; self.maskName = maskName; self.positionsQ = positionsQ
    self.positionsKV = positionsKV; self.positionsName = positionsName; self.lookup = lookup
  }
}
