import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

/// `attnax bounds`: what this machine allows a model, measured now: the GEMM throughput on the
/// model's own linear shapes (a prefill's bound) and the streaming-read bandwidth (a decode
/// step's bound), with the FLOPs and bytes they divide. One JSON line on stdout.
struct Bounds: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Measure a model's physical bounds on this machine: GEMM throughput on its layer shapes and streaming-read bandwidth.",
    discussion: """
      Uses config.json only (random weights of the model's shapes) and the process's BLAS threads \
      (OPENBLAS_NUM_THREADS), split as a prefill splits them. Prints one JSON line: gemm_gflops \
      (the layer's linear products with --rows rows, each timed best of --repeat, FLOPs over the \
      sum of the best times), gemm_square_gflops (one 1024^3 product: the machine's GEMM rate), \
      stream_gbs (1 GiB read by the threads, the best of the AVX2 and AVX-512 loads), and for --prompt-tokens P and --decode-tokens N: prefill_flop_per_token (all \
      matrix products of a P-token prefill: projections, FFN, causal attention pairs, the LM \
      head on the last row; per token), decode_bytes_per_token (every weight once, the tied table \
      as the LM head, plus the K/V cache at the mean context), and the bounds prefill_bound_tok_s \
      = gemm_gflops / prefill FLOP per token and decode_bound_tok_s = stream_gbs / bytes per token.
      """)

  @Option(help: "Model directory (its config.json).") var model: String
  @Option(help: "Rows of each timed product (a prefill's prompt tokens, or an encoder batch's tokens).") var rows: Int = 512
  @Option(help: "Prompt tokens of the prefill the bounds are for.") var promptTokens: Int = 512
  @Option(help: "Decode steps after the prompt (the KV cache grows over them).") var decodeTokens: Int = 64
  @Option(help: "Timings per product (best kept).") var `repeat`: Int = 5

  /// The options' ranges, as the command line is parsed (a usage error: one line, exit 2).
  func validate() throws {
    try OptionLimits.validating {
      try OptionLimits.check("--rows", rows, 1...8192)
      try OptionLimits.check("--prompt-tokens", promptTokens, 1...Int(Int32.max))
      try OptionLimits.check("--decode-tokens", decodeTokens, 0...Int(Int32.max))
      try OptionLimits.check("--repeat", `repeat`, 1...1000)
    }
  }

  func run() throws {
    try Launch.main { _ in
      try measure()
      return 0
    }
  }

  /// The measurements and the JSON line; a bad config.json is one error line (``Launch``).
  func measure() throws {
    let config = try JSONFile.decode(TransformerConfig.self, path: (model as NSString).appendingPathComponent("config.json"))
    let shapes = Self.linearShapes(config)
    let gemm = Self.gemmGFLOPs(shapes: shapes, rows: rows, repeats: `repeat`)
    let square = Self.gemmGFLOPs(shapes: [(1024, 1024)], rows: 1024, repeats: `repeat`)
    // The best of the AVX2 and AVX-512 reads (on Zen 4 the 256-bit loads stream 5-10% faster).
    let levels = Array(Set([1, 2].map { min($0, Kernels.hardwareLevel) })).sorted()
    let stream = levels.map { Double(1 << 30) / Kernels.streamReadSeconds(threads: BLAS.threads, level: $0) / 1e9 }.max() ?? 0
    let flops = Self.prefillFLOPs(config, prompt: promptTokens) / Double(promptTokens)
    let bytes = Self.decodeBytes(config, context: Double(promptTokens) + Double(decodeTokens) / 2)
    let fields: [(String, BenchJSON)] = [
      ("bench", .string("bounds")), ("model", .string((model as NSString).lastPathComponent)),
      ("blas_core", .string(BLAS.coreName)), ("blas_threads", .int(BLAS.threads)), ("simd", .string(Kernels.name)),
      ("rows", .int(rows)), ("gemm_gflops", .double(gemm)), ("gemm_square_gflops", .double(square)),
      ("stream_gbs", .double(stream)),
      ("linear_flop_per_token", .double(2 * Double(Self.linearWeights(config)))),
      ("attention_flop_per_pair", .double(4 * Double(config.dModel * config.numLayers))),
      ("prompt_tokens", .int(promptTokens)), ("decode_tokens", .int(decodeTokens)),
      ("prefill_flop_per_token", .double(flops)), ("decode_bytes_per_token", .double(bytes)),
      ("prefill_bound_tok_s", .double(gemm * 1e9 / flops)), ("decode_bound_tok_s", .double(stream * 1e9 / bytes)),
      ("loadavg_1m", .double(Memory.loadAverage)),
    ]
    print(BenchJSON.object(fields))
  }

  /// (in, out) of every linear layer of the whole stack (all layers), unsharded.
  static func linearShapes(_ c: TransformerConfig) -> [(in: Int, out: Int)] {
    let b = c.blockConfig, d = b.dModel, kv = b.kvHeads * b.headDim, f = b.dFF
    let ffn: [(in: Int, out: Int)] = b.ffActivation.isGated ? [(d, f), (d, f), (f, d)] : [(d, f), (f, d)]
    let layer: [(in: Int, out: Int)] = [(d, d), (d, kv), (d, kv), (d, d)] + ffn
    return Array([[(in: Int, out: Int)]](repeating: layer, count: b.numLayers).joined())
  }

  /// Weights of all the linear layers (in · out summed over ``linearShapes(_:)``).
  static func linearWeights(_ c: TransformerConfig) -> Int { linearShapes(c).reduce(0) { $0 + $1.in * $1.out } }

  /// FLOPs over the best times of `linear` on (rows, in) × (out, in)ᵀ for each distinct shape,
  /// weighted by how often the stack uses it.
  static func gemmGFLOPs(shapes: [(in: Int, out: Int)], rows: Int, repeats: Int) -> Double {
    var seconds = 0.0, flops = 0.0
    var distinct: [String: (shape: (in: Int, out: Int), uses: Int)] = [:]
    for s in shapes { distinct["\(s.in)x\(s.out)", default: (s, 0)].uses += 1 }
    for (_, entry) in distinct.sorted(by: { $0.key < $1.key }) {
      let (s, uses) = entry
      let x = Tensor(shape: [rows, s.in], data: (0..<(rows * s.in)).map { Float($0 % 17) * 0.01 - 0.08 })
      let w = Tensor(shape: [s.out, s.in], data: (0..<(s.out * s.in)).map { Float($0 % 13) * 0.01 - 0.06 })
      var best = Double.infinity
      for _ in 0..<(repeats + 1) {  // the first fills caches and page-faults buffers
        best = min(best, MonotonicClock.measure { linear(x, w) }.seconds)
      }
      seconds += best * Double(uses)
      flops += 2 * Double(rows * s.in * s.out) * Double(uses)
    }
    return flops / seconds / 1e9
  }

  /// Matrix-product FLOPs of a `prompt`-token prefill: every linear layer on every row, QKᵀ and
  /// PV over the causal pairs, and the LM head on the last row only (encoders: no head, all pairs).
  static func prefillFLOPs(_ c: TransformerConfig, prompt p: Int) -> Double {
    let linearPerToken = 2 * Double(linearWeights(c))
    let causal = c.model == .transformerDecoder
    let pairs = causal ? Double(p) * Double(p + 1) / 2 : Double(p) * Double(p)
    let head = causal ? 2 * Double(c.dModel) * Double(c.vocabSize) : 0
    return linearPerToken * Double(p) + 4 * Double(c.dModel * c.numLayers) * pairs + head
  }

  /// Bytes a decode step reads at `context` cached tokens: every linear weight and the
  /// vocabulary table (the LM head) once, and K and V of every cached token in every layer.
  static func decodeBytes(_ c: TransformerConfig, context: Double) -> Double {
    let b = c.blockConfig
    let weights = Double(linearWeights(c) + c.vocabSize * c.dModel)
    let cache = 2 * Double(b.numLayers * b.kvHeads * b.headDim) * context
    return 4 * (weights + cache)
  }
}
