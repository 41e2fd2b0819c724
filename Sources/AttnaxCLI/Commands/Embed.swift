import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import AttnaxTokenizers
import Foundation

/// `attnax embed`: sentence embeddings from an encoder model directory, on any tp × cp layout.
struct Embed: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Sentence embeddings from an encoder model directory (e.g. all-MiniLM-L6-v2 imported by scripts/reference/import_bert.py).",
    discussion: """
      Rank 0 prints one JSON line per text: {"index", "tokens", "text", "embedding"} (the \
      embedding pooled and normalised as config.json says). --similarity prints the cosine \
      similarity of every pair instead of the vectors.
      """)

  @Option(
    help:
      "A sentence-transformers or Hugging Face folder (config.json, model.safetensors, tokenizer.json), or an attnax model directory."
  )
  var model: String
  @Option(help: ArgumentHelp(WeightsOption.help)) var weights: WeightsOption = .native
  @Option(help: "A text to embed (repeatable).") var text: [String] = []
  @Option(
    help:
      "A UTF-8 file of texts, one a line (LF, CRLF or CR; empty lines skipped); a .jsonl file holds one JSON string a line (texts with newlines); /dev/stdin and <(...) pipes work."
  )
  var input: String?
  @Option(help: "Sentences per forward pass (at most 4096).") var batchSize: Int = 32
  @Flag(help: "Print the pairwise cosine similarities instead of the embeddings.") var similarity = false
  @Option(
    help:
      "Embed the texts this many times, at most 1000 (output printed once), one speed line per run: benchmarks take the warm runs."
  )
  var runs: Int = 1
  @OptionGroup var layout: LayoutOptions

  /// The most `--batch-size` (sentences per forward pass) and `--runs`.
  static let maxBatchSize = 4096
  static let maxRuns = 1000

  /// The options' own ranges, as the command line is parsed (a usage error: one line, exit 2
  /// on every rank).
  func validate() throws {
    try OptionLimits.validating {
      try OptionLimits.check("--batch-size", batchSize, 1...Self.maxBatchSize)
      try OptionLimits.check("--runs", runs, 1...Self.maxRuns)
    }
  }

  func run() throws {
    try Launch.main { world in
      layout.applyTimeout(world)
      // --input is read by rank 0 alone (a pipe or stdin can be read only there) and broadcast.
      let inputText = try TextInput.shared(world, input)
      let prepared = Result { try prepare(inputText: inputText) }
      try Launch.agree(world, prepared)
      let (config, weights, texts, ids) = try prepared.get()
      let (grid, model, _) = try layout.loadModel(world, config: config, weights: weights, command: "attnax embed")
      Launch.note(world, try model.weightInventory.line(world, storage: self.weights.storage))
      // prepare() checked what the embedder checks, on every rank alike: no agreement needed.
      let embedder = try SentenceEmbedder(model: model, batchSize: batchSize)
      let t0 = MonotonicClock.seconds()
      let result = Result { try embedder.embed(ids) }
      try Launch.agreeAfterCollectives(world, result)
      let seconds = MonotonicClock.seconds() - t0
      let embeddings = try result.get()
      let tokens = ids.map(\.count).reduce(0, +)
      func speed(_ seconds: Double) -> String {
        String(
          format: "embed: %d texts (%d tokens) in %.3f s: %.1f texts/s, tp %d x cp %d",
          texts.count, tokens, seconds, Double(texts.count) / max(seconds, 1e-9), grid.tpSize, grid.cpSize)
      }
      var last = seconds
      for run in 1...runs where runs > 1 {
        if run > 1 {
          let t = MonotonicClock.seconds()
          let again = Result { _ = try embedder.embed(ids) }
          try Launch.agreeAfterCollectives(world, again)
          last = MonotonicClock.seconds() - t
        }
        Launch.note(world, "run \(run) of \(runs): \(speed(last))")
      }
      if world.rank == 0 {
        var out = ""
        if similarity {
          let norms = embeddings.map { e in e.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
          for i in texts.indices {
            for j in texts.indices where j > i {
              let c = zip(embeddings[i], embeddings[j]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
              out +=
                String(format: "%.4f", c / max(norms[i] * norms[j], 1e-30))
                + "  [\(i + 1)] \(texts[i])  ~  [\(j + 1)] \(texts[j])\n"
            }
          }
        } else {
          for (i, e) in embeddings.enumerated() {
            out +=
              "{\"index\":\(i),\"tokens\":\(ids[i].count),\"text\":\(Escaping.jsonQuoted(texts[i])),\"embedding\":["
              + e.map { "\($0)" }.joined(separator: ",") + "]}\n"
          }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
      }
      Launch.note(world, speed(last))
      return 0
    }
  }

  /// The model directory, its tokenizer, and the texts' ids; no communication. `inputText`:
  /// the --input file as rank 0 read it.
  func prepare(inputText: String?) throws -> (TransformerConfig, WeightSource, [String], [[Int32]]) {
    var texts = text
    if let input, let inputText {
      let lines = TextInput.lines(inputText)
      guard !lines.isEmpty else {
        throw AttnaxError.file(
          path: input, message: inputText.isEmpty ? "holds no text: it is empty" : "holds no text: only empty lines")
      }
      if input.hasSuffix(".jsonl") {
        for (n, line) in lines.enumerated() {
          guard case let .string(text)? = try? JSONValue.parse(Array(line.utf8)) else {
            throw AttnaxError.file(path: input, message: "line \(n + 1) is not a JSON string")
          }
          texts.append(text)
        }
      } else {
        texts += lines
      }
    }
    guard !texts.isEmpty else { throw LaunchError.option("--text", "give at least one --text or an --input file with texts") }
    let checkpoint = try ModelUse.embed.open(model, storage: weights.storage)
    let config = checkpoint.config
    guard let tokenizer = try ModelTokenizer.load(checkpoint) else {
      throw AttnaxError.file(
        path: (model as NSString).appendingPathComponent("tokenizer.json"), message: "missing: embed needs the model's tokenizer")
    }
    let ids = texts.map { tokenizer.encode($0, addSpecialTokens: true, parseSpecial: true) }
    if let i = ids.firstIndex(where: { $0.count > config.maxLen }) {
      throw AttnaxError.input(
        name: "text", message: "text \(i + 1) has \(ids[i].count) tokens, more than the model's max_len \(config.maxLen)")
    }
    try Self.checkMemory(ids, batchSize: batchSize, config: config)
    return (config, checkpoint.weights, texts, ids)
  }

  /// One forward pass's largest buffers must fit in this machine's memory: float32 hidden rows
  /// (the input, Q/K/V, the output, the FFN hidden), and for standard attention every head's
  /// scores, for a batch of the longest texts. A --batch-size too large for them is refused
  /// before anything is allocated.
  static func checkMemory(_ ids: [[Int32]], batchSize: Int, config: TransformerConfig) throws {
    let batch = Double(min(batchSize, ids.count)), tokens = Double(ids.map(\.count).max() ?? 0)
    var perToken = Double(5 * config.dModel + 3 * config.dFF)
    if config.attentionType == .standard { perToken += Double(config.numHeads) * tokens }
    let bytes = 4 * batch * tokens * perToken, memory = Memory.physicalBytes
    guard memory <= 0 || bytes <= memory else {
      throw LaunchError.option(
        "--batch-size",
        String(
          format: "a batch of %.0f texts of up to %.0f tokens needs about %.1f GiB, more than this machine's memory (%.1f GiB)",
          batch, tokens, bytes / Double(1 << 30), memory / Double(1 << 30)))
    }
  }
}
