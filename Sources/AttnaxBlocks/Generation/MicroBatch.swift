import AttnaxDist
import AttnaxFormats

/// Some consecutive prompts of a generation that run through the model together, with their
/// own KV caches: the whole batch on one pipeline stage, or one of several micro-batches in
/// flight, so that every stage of a pipeline works at once (stage 0 embeds micro-batch 2 while
/// stage 1 runs micro-batch 1).
///
/// The prompts are left-padded to the micro-batch's longest (the pads masked out, positions
/// counted from each prompt's first real token) and prefilled in one step; then every step
/// feeds one token per row.
struct MicroBatch {
  /// The request's rows (prompts) this micro-batch holds.
  let rows: Range<Int>
  /// Pads before each prompt.
  let pads: [Int]
  /// One cache per layer of this rank's stage.
  let caches: [KVCache]
  /// The next step's ids (B, n): the padded prompts, then the chosen tokens.
  var ids: [Int32]
  /// Tokens in the caches once the next step has run.
  var length: Int
  /// Steps whose tokens are known.
  var steps = 0
  /// Whether every row has stopped: the micro-batch runs no more steps.
  var finished = false

  /// The micro-batch of `request`'s prompts `rows`, with caches for `model`'s stage.
  init(_ request: GenerationRequest, rows: Range<Int>, model: TransformerModel) {
    let prompts = request.prompts[rows]
    let width = prompts.map(\.count).max()!
    self.rows = rows
    pads = prompts.map { width - $0.count }
    caches = model.stack.makeCaches(batch: rows.count, maxLen: width + request.maxNewTokens)
    let pad = Int32(truncatingIfNeeded: model.config.padTokenID)
    ids = zip(prompts, pads).flatMap { [Int32](repeating: pad, count: $1) + $0 }
    length = width
  }

  /// The next step's inputs: ids, and where prompts were padded the mask and positions.
  var inputs: ModelInputs {
    let b = rows.count, n = ids.count / b
    var inputs = ModelInputs(ids: IntTensor(shape: [b, n], data: ids))
    if pads.contains(where: { $0 > 0 }) {
      inputs.mask = MaskTensor(
        shape: [b, 1, 1, length], data: pads.flatMap { p in (0..<length).map { UInt8($0 < p ? 0 : 1) } })
      inputs.positions = IntTensor(
        shape: [b, n], data: pads.flatMap { p in ((length - n)..<length).map { Int32(max(0, $0 - p)) } })
    }
    return inputs
  }

  /// Takes one step's tokens (one per row): they are the next step's ids.
  mutating func advance(_ chosen: [Int32], finished: Bool) {
    ids = chosen
    length += 1
    steps += 1
    self.finished = finished
  }
}
