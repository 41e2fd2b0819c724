import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

/// `attnax bench`: times one block's forward on this grid with fixed-seed random weights
/// (float32), for the preset configs of docs/BENCHMARKS.md or an ad-hoc `custom` block.
///
/// Only the forward on each rank's local shard is timed: inputs are generated directly as this
/// rank's rows of the global input (exactly what `stack.layout(length:).scatter` of the global
/// tensor would hand it, without ever materialising the global tensor, so peak memory per rank
/// is that of the shard), and nothing is gathered afterwards.
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time one block's forward (fixed-seed random weights, float32 or --weights q8_0) on the tp x cp grid.",
    discussion: """
      Configs: enc-base, enc-long, dec-llama, xdec, decode, custom (comma-separated list, or all). \
      custom needs --seq, --d-model, --heads, --d-ff and takes --block, --kv-heads, --attention, \
      --block-size, --causal, --activation, --norm, --rope, --batch, --encoder-seq, --layers.

      Each config: --warmup untimed forwards, then timed forwards until at least --repeat ran and \
      the median settled (the last three running medians within 1% of the current one), or the \
      timed forwards add up to --budget seconds, or --max-repeat ran.

      With --json rank 0 prints one JSON object per config on stdout; everything else goes to \
      stderr. Peak RSS (getrusage ru_maxrss) is per process and never goes down: run one config \
      per process when its memory figure matters. See docs/BENCHMARKS.md.
      """)

  @Option(help: "Config name(s): enc-base, enc-long, dec-llama, xdec, decode, custom; comma-separated, or all.")
  var config: String
  @Flag(help: "Rank 0 prints one JSON object per config on stdout; human output goes to stderr.")
  var json = false
  @Option(help: "Sequence length (overrides the preset; for decode: the context, cached = seq - 1).")
  var seq: Int?
  @Option(name: .customLong("repeat"), help: "Minimum number of timed forwards.")
  var repeats: Int = 3
  @Option(help: "Maximum number of timed forwards.")
  var maxRepeat: Int = 30
  @Option(help: "Untimed warm-up forwards.")
  var warmup: Int = 1
  @Option(help: "Stop repeating once the timed forwards add up to this many seconds (after --repeat).")
  var budget: Double = 20
  @Option(help: "BLAS threads per rank (default: OPENBLAS_NUM_THREADS / OpenBLAS' own choice).")
  var threads: Int?
  @Flag(help: "Load the weights and report memory only (no forward).")
  var loadOnly = false
  @Option(help: "How the random weights are held: f32 (native is the same) or q8_0 (quantized to Q8_0 at load).")
  var weights: WeightsOption = .f32
  @Flag(help: "Skip the blocking probes: cp ring transfers (hidden-communication share, cp > 1) and bare MPI_Allreduce (tp > 1).")
  var noCommProbe = false
  @Option(
    help:
      "Algorithm of the tp allreduces in the block: automatic, iallreduce, ring, or bare (blocking MPI_Allreduce after a barrier; benchmarks only)."
  )
  var allreduce: String = "automatic"
  @Option(
    help:
      "tp > 1: also time bare MPI_Allreduce, MPI_Iallreduce and the ring alone at these sizes (bytes; K/M suffixes), e.g. 4K,64K,1.5M,8M."
  )
  var allreduceSizes: String?

  // Ad-hoc block (--config custom); --batch/--encoder-seq/--layers also override presets.
  @Option(help: "custom: encoder or decoder.") var block: String = "encoder"
  @Option(help: "Batch size.") var batch: Int?
  @Option(help: "Decoder: encoder output length (default: --seq).") var encoderSeq: Int?
  @Option(help: "custom: d_model.") var dModel: Int?
  @Option(help: "custom: query heads.") var heads: Int?
  @Option(help: "custom: KV heads (GQA).") var kvHeads: Int?
  @Option(help: "custom: FFN hidden width.") var dFf: Int?
  @Option(help: "custom: standard, memory_efficient, flash, pallas_flash, linear, lite.") var attention: String = "flash"
  @Option(help: "custom: attention block size.") var blockSize: Int = 512
  @Flag(help: "custom: causal self-attention (score mod).") var causal = false
  @Option(help: "custom: gelu, relu, swiglu, geglu.") var activation: String = "gelu"
  @Option(help: "custom: layer or rms.") var norm: String = "layer"
  @Flag(help: "custom: RoPE in attention.") var rope = false
  @Option(help: "Number of stacked layers.") var layers: Int?
  @OptionGroup var layout: LayoutOptions

  func run() throws {
    try Launch.main { world in
      // Long benchmarks legitimately keep peers waiting: default deadline one hour.
      if layout.timeout == nil && getenv("ATTNAX_TIMEOUT") == nil { world.timeout = 3600 }
      let names = config == "all" ? BenchCase.presets : config.split(separator: ",").map(String.init)
      let cases = Result { try names.map { try makeCase($0) } }
      if let bad = try world.agree(cases.failureText) { throw LaunchError.input(bad.rank, bad.message) }
      let grid = try layout.grid(world, heads: try cases.get().map(\.config.numHeads).min())
      grid.tp.allreduceAlgorithm = AllreduceAlgorithm(rawValue: allreduce) ?? .automatic
      if let threads { BLAS.threads = threads }
      for c in try cases.get() {
        let runner = BenchRunner(world: world, grid: grid, bench: self, c: c)
        let outcome = Result { try runner.run() }
        if let bad = try world.agree(outcome.failureText) { throw LaunchError.input(bad.rank, bad.message) }
      }
      return 0
    }
  }

  /// The options' ranges, as the command line is parsed (a usage error: one line, exit 2 on
  /// every rank): every size small enough that no product of them overflows; what a block of
  /// those sizes needs in memory is ``BenchCase/checkMemory()``'s question.
  func validate() throws {
    guard AllreduceAlgorithm(rawValue: allreduce) != nil else {
      throw ValidationError("--allreduce must be one of \(AllreduceAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    _ = try allreduceProbeSizes()
    try OptionLimits.validating {
      let length = 1...(1 << 20), width = 1...(1 << 16), count = 1...(1 << 12), timings = 1...100_000
      for (flag, value) in [("--seq", seq), ("--encoder-seq", encoderSeq), ("--block-size", blockSize)] {
        try OptionLimits.check(flag, value, length)
      }
      for (flag, value) in [("--d-model", dModel), ("--d-ff", dFf)] { try OptionLimits.check(flag, value, width) }
      for (flag, value) in [("--batch", batch), ("--heads", heads), ("--kv-heads", kvHeads), ("--layers", layers)] {
        try OptionLimits.check(flag, value, count)
      }
      try OptionLimits.check("--threads", threads, 1...1024)
      try OptionLimits.check("--repeat", repeats, timings)
      try OptionLimits.check("--max-repeat", maxRepeat, timings)
      try OptionLimits.check("--warmup", warmup, 0...timings.upperBound)
      try OptionLimits.check("--budget", budget, positiveUpTo: LayoutOptions.maxTimeout, unit: "seconds")
    }
  }

  func makeCase(_ name: String) throws -> BenchCase {
    var c: BenchCase
    switch name {
    case "enc-base":
      c = BenchCase(
        name: name,
        config: BlockConfig(
          block: .encoder, dModel: 768, numHeads: 12, dFF: 3072,
          attentionType: .standard), batch: 1, seq: 512)
    case "enc-long":
      c = BenchCase(
        name: name,
        config: BlockConfig(
          block: .encoder, dModel: 512, numHeads: 8, dFF: 2048,
          attentionType: .flash, attentionBlockSize: 512,
          scoreMods: [.causal]), batch: 1, seq: 4096)
    case "dec-llama", "decode":
      c = BenchCase(
        name: name,
        config: BlockConfig(
          block: .encoder, dModel: 1024, numHeads: 16, dFF: 2816,
          attentionType: .flash, attentionBlockSize: 512,
          normType: .rms, ffActivation: .swiglu, numKVHeads: 4,
          useRoPE: true, scoreMods: [.causal]), batch: 1, seq: 1024)
      c.decode = name == "decode"
    case "xdec":
      c = BenchCase(
        name: name,
        config: BlockConfig(
          block: .decoder, dModel: 512, numHeads: 8, dFF: 2048,
          attentionType: .standard, scoreMods: [.causal]),
        batch: 2, seq: 256, encoderSeq: 256)
    case "custom":
      guard let s = seq, let d = dModel, let h = heads, let f = dFf else {
        throw ValidationError("--config custom needs --seq, --d-model, --heads and --d-ff")
      }
      guard let kind = BlockKind(rawValue: block) else { throw ValidationError("--block must be encoder or decoder") }
      guard let att = AttentionType(rawValue: attention) else { throw ValidationError("unknown --attention '\(attention)'") }
      guard let act = FFActivation(rawValue: activation) else { throw ValidationError("unknown --activation '\(activation)'") }
      guard let nt = NormType(rawValue: norm) else { throw ValidationError("--norm must be layer or rms") }
      c = BenchCase(
        name: name,
        config: BlockConfig(
          block: kind, dModel: d, numHeads: h, dFF: f, attentionType: att,
          attentionBlockSize: blockSize, normType: nt, ffActivation: act,
          numKVHeads: kvHeads, useRoPE: rope,
          scoreMods: causal ? [.causal] : []),
        batch: 1, seq: s, encoderSeq: kind == .decoder ? s : nil)
    default:
      throw ValidationError("unknown config '\(name)' (\((BenchCase.presets + ["custom"]).joined(separator: ", ")))")
    }
    if let seq { c.seq = seq; if c.encoderSeq != nil { c.encoderSeq = seq } }
    if let encoderSeq, c.config.block == .decoder { c.encoderSeq = encoderSeq }
    if let batch { c.batch = batch }
    if let layers { c.config.numLayers = layers }
    if c.config.useRoPE { c.config.ropeMaxPositions = max(c.config.ropeMaxPositions, c.seq) }
    try c.config.validate()
    if c.decode && c.seq < 2 {
      throw ValidationError("option '--seq': decode needs at least 2 (the cached tokens and the new one), got \(c.seq)")
    }
    try c.checkMemory()
    return c
  }
}
