import AttnaxBlocks
import AttnaxFormats
import Foundation

extension BenchRunner {
  /// The memory-bandwidth bound of a decode step, measured in the same run: every rank reads
  /// 1 GiB at once with its BLAS threads (so ranks and threads share the memory system as they
  /// do while decoding), and the bound
  /// is the bytes a step must read on a rank — its resident weights and its part of the KV
  /// cache — over that rank's streaming-read bandwidth. Fields: `stream_read_gbs_per_rank`,
  /// `decode_bytes_per_rank`, `bandwidth_bound_ms` (max over ranks) and `decode_to_bound`
  /// (median step time / bound; ≤ 1.2 is the goal, < 1 means the weights partly stay in cache).
  func decodeBound(_ stack: BlockStack, median: Double, weightsPerRank: [Int]) throws -> [(String, BenchJSON)] {
    let cfg = c.config
    try world.barrier()
    let seconds = Kernels.streamReadSeconds(threads: BLAS.threads)
    let gbs = try world.valuesByRank(Int(Double(1 << 30) / seconds / 1e6)).map { Double($0) / 1e3 }
    // K and V of every cached token (and the new one) of this rank's KV heads, all layers.
    let cacheBytes = 2 * cfg.numLayers * c.batch * c.seq * stack.plan.kvHeads.count * cfg.headDim * 4 / grid.cpSize
    let bytes = weightsPerRank.map { $0 + cacheBytes }
    let bound = zip(bytes, gbs).map { Double($0) / ($1 * 1e9) }.max() ?? 0
    say(
      String(
        format: "  decode bound: %@ per rank (weights + KV cache) at %@ GB/s streaming read per rank = %.3f ms; step/bound %.2f",
        bytes.map(Memory.text).joined(separator: ", "), gbs.map { String(format: "%.1f", $0) }.joined(separator: ", "),
        bound * 1e3, median / bound))
    return [
      ("stream_read_gbs_per_rank", .doubles(gbs)), ("decode_bytes_per_rank", .ints(bytes)),
      ("bandwidth_bound_ms", .double(bound * 1e3)), ("decode_to_bound", .double(median / bound)),
    ]
  }
}
