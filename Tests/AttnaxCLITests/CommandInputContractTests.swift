// The process contract of `generate` and `embed` (docs/BAD_INPUTS.md, rows 62-83): their text
// files read the same whatever the line endings, from a pipe or stdin too (rank 0 reads, the
// ranks share the text); a model of the wrong kind, a missing tokenizer file, a prompt too long,
// a number out of range on any command and an output path that cannot be written are refused
// before any token, in one line naming the culprit, exit status 2 on every rank; a tiny
// temperature or a huge top-k runs and gives the limit's tokens. The real binary alone (np 1)
// and under scripts/mpirun (np 2), on tiny full models with the fixture tokenizers.

import AttnaxBlocks
import AttnaxFormats
import Foundation
import Testing
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

extension ProcessContractTests {
  @Test("a prompts or texts file splits into the same lines with LF, CRLF, CR endings and a byte-order mark")
  func lineEndings() throws {
    let w = try Workspace()
    let dec = try w.model("dec", TextModels.decoder, tokenizer: TextModels.bpe)
    let enc = try w.model("enc", TextModels.encoder, tokenizer: TextModels.wordPiece)
    let lines = ["hello world", "the cat", "a b c"]
    let lf = try w.textFile("lf.txt", lines.joined(separator: "\n") + "\n")
    let others = try [
      w.textFile("crlf.txt", lines.joined(separator: "\r\n") + "\r\n"), w.textFile("cr.txt", lines.joined(separator: "\r")),
      w.textFile("bom.txt", "\u{FEFF}" + lines.joined(separator: "\r\n") + "\r\n\r\n"),
    ]
    let jsonl = try w.textFile("crlf.jsonl", lines.map { "\"\($0)\"" }.joined(separator: "\r\n") + "\r\n")
    for layout in [Layout.single, .ranks(2)] {
      func generate(_ file: String) throws -> String {
        try w.ran(["generate", "--model", dec, "--prompts", file, "--max-new-tokens", "3", "--ignore-eos"], layout: layout)
      }
      let want = try generate(lf)
      #expect(want.components(separatedBy: "--- prompt ").count == 4, "\(layout.label): \(want)")
      // Every convention alone; at np 2 (the text broadcast from rank 0) the Windows one.
      for file in layout.np == 1 ? others : [others[0]] { #expect(try generate(file) == want, "\(layout.label): \(file)") }
      let texts = try w.ran(["embed", "--model", enc] + lines.flatMap { ["--text", $0] }, layout: layout)
      #expect(texts.split(separator: "\n").count == 3, "\(layout.label): \(texts)")
      for file in layout.np == 1 ? others + [jsonl] : [jsonl] {
        #expect(try w.ran(["embed", "--model", enc, "--input", file], layout: layout) == texts, "\(layout.label): \(file)")
      }
    }
  }

  @Test("--prompts and --input read a pipe: /dev/stdin fed to the binary or to mpirun (rank 0), and <(...)")
  func pipes() throws {
    let w = try Workspace()
    let dec = try w.model("dec", TextModels.decoder, tokenizer: TextModels.bpe)
    let enc = try w.model("enc", TextModels.encoder, tokenizer: TextModels.wordPiece)
    let text = "hello world\r\nthe cat\r\n"
    let file = try w.textFile("prompts.txt", text)
    let generate = ["generate", "--model", dec, "--max-new-tokens", "3", "--ignore-eos", "--prompts"]
    for layout in [Layout.single, .ranks(2)] {
      let want = try w.ran(generate + [file], layout: layout)
      #expect(try w.ran(generate + ["/dev/stdin"], layout: layout, stdin: text) == want, "\(layout.label)")
      let texts = try w.ran(["embed", "--model", enc, "--input", file], layout: layout)
      #expect(try w.ran(["embed", "--model", enc, "--input", "/dev/stdin"], layout: layout, stdin: text) == texts)
    }
    // A shell's process substitution (a /dev/fd path) for the binary started alone.
    let want = try w.ran(generate + [file], layout: .single)
    let shell = try ProcessRunner.run(
      ["/bin/bash", "-c", #"exec "$0" "${@:1}" <(printf 'hello world\r\nthe cat\r\n')"#, Programs.attnax] + generate,
      environment: w.environment([:]), deadline: Workspace.hang)
    #expect(shell.status == 0 && shell.stdout == want, "\(shell)\n\(shell.stderr)")
  }

  @Test("a text file that cannot be read says why: missing, a folder, empty (/dev/null, empty stdin), not UTF-8")
  func unreadableText() throws {
    let w = try Workspace()
    let dec = try w.model("dec", TextModels.decoder, tokenizer: TextModels.bpe)
    let enc = try w.model("enc", TextModels.encoder, tokenizer: TextModels.wordPiece)
    let binary = "\(w.path)/latin1.txt"
    try Data([0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: URL(fileURLWithPath: binary))
    let generate = ["generate", "--model", dec, "--prompts"]
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        generate + ["\(w.path)/nowhere.txt"], layout: layout, .exact("error: file '\(w.path)/nowhere.txt': does not exist"),
        output: .none)
      try w.expectRefused(
        generate + ["\(w.path)/out"], layout: layout, .exact("error: file '\(w.path)/out': is a folder, not a text file"),
        output: .none)
      try w.expectRefused(
        generate + ["/dev/null"], layout: layout, .exact("error: file '/dev/null': holds no prompt: it is empty"), output: .none)
      try w.expectRefused(
        generate + ["/dev/stdin"], layout: layout, .exact("error: file '/dev/stdin': holds no prompt: only empty lines"),
        output: .none, stdin: "\r\n\n")
      try w.expectRefused(
        ["embed", "--model", enc, "--input", "/dev/null"], layout: layout,
        .exact("error: file '/dev/null': holds no text: it is empty"), output: .none)
      try w.expectRefused(
        ["embed", "--model", enc, "--input", binary], layout: layout,
        .exact("error: file '\(binary)': is not UTF-8 text: byte 0xe9 at offset 3"), output: .none)
    }
  }

  @Test(
    "a model of the wrong kind is refused naming its config field: an encoder or a block stack to generate, a decoder to embed")
  func wrongModelKind() throws {
    let w = try Workspace()
    let enc = try w.model("enc", TextModels.encoder, tokenizer: TextModels.wordPiece)
    let dec = try w.model("dec", TextModels.decoder, tokenizer: TextModels.bpe)
    let pooled = try w.model("pooled", TextModels.decoder, tokenizer: TextModels.bpe, edit: { $0["pooling"] = "cls" })
    let block = try w.model("block", Models.encoder)
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        ["generate", "--model", enc, "--prompt", "Hi"], layout: layout,
        .exact(
          "error: config field 'model': is 'transformer_encoder': generate needs a causal language model (transformer_decoder); an encoder has no next-token head (sentence embeddings: attnax embed)"
        ), output: .none)
      try w.expectRefused(
        ["generate", "--model", pooled, "--prompt-ids", "1,2"], layout: layout,
        .exact(
          "error: config field 'pooling': is 'cls': a sentence-embedding model, not a language model: generate cannot use it (attnax embed)"
        ), output: .none)
      try w.expectRefused(
        ["generate", "--model", block, "--prompt", "Hi"], layout: layout,
        .exact(
          "error: config field 'block': is \"encoder\": this folder holds a block stack for attnax forward, not a model generate can run (config.json has no 'model')"
        ), output: .none)
      try w.expectRefused(
        ["embed", "--model", dec, "--text", "Hi"], layout: layout,
        .exact(
          "error: config field 'model': is 'transformer_decoder': embed needs a sentence-embedding model (transformer_encoder with pooling mean or cls)"
        ), output: .none)
    }
  }

  @Test(
    "the culprit is named: a model folder without tokenizer.json or tokenizer_config.json, a prompt longer than the model holds")
  func culprits() throws {
    let w = try Workspace()
    let bare = try w.model("bare", TextModels.decoder)
    let noConfig = try w.model("noconfig", TextModels.decoder, tokenizer: (TextModels.bpe.folder, ["tokenizer.json"]))
    let noTemplate = try w.model("notemplate", TextModels.decoder, tokenizer: (TextModels.bpe.folder, ["tokenizer.json"]))
    try Data(#"{"eos_token": "<|im_end|>"}"#.utf8).write(to: URL(fileURLWithPath: "\(noTemplate)/tokenizer_config.json"))
    let dec = try w.model("dec", TextModels.decoder, tokenizer: TextModels.bpe)
    let long = (0..<70).map { _ in "5" }.joined(separator: ",")
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        ["generate", "--model", bare, "--prompt", "Hi"], layout: layout,
        .exact(
          "error: file '\(bare)/tokenizer.json': missing: this model folder has no tokenizer to encode text: give the prompt as token ids with --prompt-ids"
        ), output: .none)
      try w.expectRefused(
        ["generate", "--model", noConfig, "--chat", "Hi"], layout: layout,
        .exact(
          "error: file '\(noConfig)/tokenizer_config.json': missing: --chat needs the chat template this file holds (give --prompt for plain text)"
        ), output: .none)
      try w.expectRefused(
        ["generate", "--model", noTemplate, "--chat", "Hi"], layout: layout,
        .exact(
          "error: file '\(noTemplate)/tokenizer_config.json': chat_template: missing: --chat needs the model's chat template (give --prompt for plain text)"
        ), output: .none)
      try w.expectRefused(
        ["generate", "--model", dec, "--prompt-ids", long, "--max-new-tokens", "1"], layout: layout,
        .exact(
          "error: option '--prompt-ids': the prompt has 70 tokens, but the model holds 64 positions (max_len (the RoPE table)) for the prompt and its new tokens together: at most 63 prompt tokens"
        ), output: .none)
      try w.expectRefused(
        ["generate", "--prompt-ids", "1,2,3;" + (0..<256).map { _ in "4" }.joined(separator: ",")], layout: layout,
        .exact(
          "error: option '--prompt-ids': prompt 2 has 256 tokens, but the model holds 256 positions (max_len (the RoPE table)) for the prompt and its new tokens together: at most 255 prompt tokens"
        ), output: .none)
    }
  }

  @Test("a number out of range on any command is one line naming the flag and its limit, before any arithmetic")
  func numbersOutOfRange() throws {
    let w = try Workspace()
    let enc = try w.model("enc", TextModels.encoder, tokenizer: TextModels.wordPiece)
    let big = "\(Int.max)"
    let cases: [([String], String)] = [
      (
        ["generate", "--prompt-ids", "1,2,3", "--max-new-tokens", big],
        "option '--max-new-tokens': the prompt (3 tokens) and \(big) new tokens need 9223372036854775810 positions, but the model holds 256 (max_len (the RoPE table))"
      ),
      (
        ["generate", "--prompt-ids", "1", "--temperature", "nan"],
        "option '--temperature': must be 0 (greedy) or a positive finite number, got nan"
      ),
      (
        ["generate", "--prompt-ids", "1", "--temperature", "inf"],
        "option '--temperature': must be 0 (greedy) or a positive finite number, got inf"
      ),
      (
        ["generate", "--prompt-ids", "1", "--temperature=-0.5"],
        "option '--temperature': must be 0 (greedy) or a positive finite number, got -0.5"
      ),
      (["generate", "--prompt-ids", "1", "--top-p", "nan"], "option '--top-p': must be in (0, 1], got nan"),
      (["generate", "--prompt-ids", "1", "--top-p", "1.5"], "option '--top-p': must be in (0, 1], got 1.5"),
      (["generate", "--prompt-ids", "1", "--top-k=-1"], "option '--top-k': must be 0 (all tokens) or positive, got -1"),
      (["generate", "--prompt-ids", "1", "--runs", big], "option '--runs': must be between 1 and 1000, got \(big)"),
      (["generate", "--prompt-ids", "1", "--timeout", "inf"], "option '--timeout': must be at most 1000000 seconds, got inf"),
      (
        ["embed", "--model", enc, "--text", "a", "--batch-size", big],
        "option '--batch-size': must be between 1 and 4096, got \(big)"
      ),
      (
        ["forward", "--model", enc, "--input", "x", "--output", "y", "--timeout", "nan"],
        "option '--timeout': must be a positive number of seconds, got nan"
      ),
      (["golden", w.path, "--cp=-1"], "option '--cp': must be at least 1, got -1"),
      (["demo", "--timeout", "1e300"], "option '--timeout': must be at most 1000000 seconds, got 1e+300"),
      (
        ["bench", "--config", "custom", "--seq", big, "--d-model", "32", "--heads", "4", "--d-ff", "64"],
        "option '--seq': must be between 1 and 1048576, got \(big)"
      ),
      (["bench", "--config", "enc-base", "--threads", big], "option '--threads': must be between 1 and 1024, got \(big)"),
      (["bench", "--config", "enc-base", "--budget", "nan"], "option '--budget': must be a positive number of seconds, got nan"),
      (
        ["bench", "--config", "enc-base", "--allreduce-sizes", "1e30M"],
        "option '--allreduce-sizes': '1e30M' is not a size from 4 bytes to 1 GiB (e.g. 4K, 1.5M)"
      ),
      (["bounds", "--model", enc, "--repeat", big], "option '--repeat': must be between 1 and 1000, got \(big)"),
    ]
    // Every case alone; under mpirun (every rank must exit 2) the first of each command.
    var seen = Set<String>()
    for (args, message) in cases {
      let first = seen.insert(args[0]).inserted && args[0] != "bounds"
      for layout in first ? [Layout.single, .ranks(2)] : [.single] {
        try w.expectRefused(args, layout: layout, .exact("error: \(message)"), output: .none)
      }
    }
  }

  @Test("a tiny temperature gives the greedy tokens and a top-k past the vocabulary all tokens, at every layout")
  func samplingLimits() throws {
    let w = try Workspace()
    let dec = try w.model("dec", TextModels.decoder, tokenizer: TextModels.bpe)
    let generate = ["generate", "--model", dec, "--prompts", try w.textFile("p.txt", "hello world\nthe cat\n")]
    let args = generate + ["--max-new-tokens", "6", "--ignore-eos"]
    let greedy = try w.ran(args, layout: .single)
    let sampled = try w.ran(args + ["--temperature", "0.9", "--top-p", "0.95", "--seed", "3"], layout: .single)
    for layout in [Layout.single, .ranks(2)] {
      for tiny in ["1e-38", "1e-45"] {
        #expect(try w.ran(args + ["--temperature", tiny, "--seed", "5"], layout: layout) == greedy, "\(layout.label) T \(tiny)")
      }
      #expect(try w.ran(args + ["--temperature", "1e-30", "--top-p", "0.5", "--seed", "5"], layout: layout) == greedy)
      for k in ["1000000000", "\(Int.max)"] {
        #expect(
          try w.ran(args + ["--temperature", "0.9", "--top-p", "0.95", "--seed", "3", "--top-k", k], layout: layout) == sampled,
          "\(layout.label) top-k \(k)")
      }
    }
  }

  @Test("an output that cannot be written is refused before any token: --logits-out in a missing folder, a folder, a FIFO")
  func outputBeforeWork() throws {
    let w = try Workspace()
    let generate = ["generate", "--prompt-ids", "1,2,3", "--max-new-tokens", "4", "--logits-out"]
    let missing = "\(w.path)/no/such/dir/logits.safetensors"
    let fifo = "\(w.path)/fifo"
    #expect(mkfifo(fifo, 0o600) == 0)
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        generate + [missing], layout: layout,
        .exact("error: file '\(missing)': cannot create a temporary file in '\(w.path)/no/such/dir': No such file or directory"),
        output: .watch(.absent(missing)))
      try w.expectRefused(
        generate + ["\(w.path)/out"], layout: layout, .exact("error: file '\(w.path)/out': cannot be replaced: Is a directory"),
        output: .none)
      // A FIFO stands for /dev/null and the other devices (a regression would rename a file over /dev/null).
      try w.expectRefused(
        generate + [fifo], layout: layout,
        .exact("error: file '\(fifo)': exists and is not a regular file (a device, pipe or socket): it would be replaced"),
        output: .none)
    }
  }
}

// MARK: - Full models for generate and embed

/// Tiny full models (weights from `RandomWeights`) with the fixture tokenizers of
/// Tests/Fixtures/tokenizers.
enum TextModels {
  /// 1 decoder layer, d_model 32, RoPE over 64 positions, vocabulary 64 (tiny-bpe uses 49).
  static var decoder: TransformerConfig {
    var c = TransformerConfig(model: .transformerDecoder, vocabSize: 64)
    c.dModel = 32; c.numHeads = 4; c.numLayers = 1; c.dFF = 64; c.maxLen = 64; c.dropoutRate = 0
    c.posEmbType = .rope; c.normType = .rms; c.ffActivation = .swiglu
    return c
  }
  /// 1 encoder layer with mean pooling, normalised (a MiniLM in miniature), vocabulary 32.
  static var encoder: TransformerConfig {
    var c = TransformerConfig(model: .transformerEncoder, vocabSize: 32)
    c.dModel = 32; c.numHeads = 4; c.numLayers = 1; c.dFF = 64; c.maxLen = 64; c.dropoutRate = 0
    c.posEmbType = .learned; c.pooling = .mean; c.normalizeEmbeddings = true
    return c
  }
  /// Byte-level BPE with a chat template and end-of-turn ids.
  static let bpe = (folder: "tiny-bpe", files: ["tokenizer.json", "tokenizer_config.json"])
  /// WordPiece (BERT's [CLS] ... [SEP]).
  static let wordPiece = (folder: "tiny-wordpiece", files: ["tokenizer.json", "tokenizer_config.json"])
}

extension Workspace {
  /// Runs a command that must succeed: exit 0 from mpirun (or the binary) and from every rank,
  /// no error line, nothing on other ranks' stdout. Returns rank 0's stdout.
  func ran(
    _ args: [String], layout: Layout, stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
  ) throws -> String {
    let run = try launch(args + layout.extra, layout: layout, detached: true, stdin: stdin)
    let what = "\(run.label): attnax \(args.joined(separator: " "))"
    #expect(
      run.process.status == 0 && !run.process.timedOut, "\(what): \(run.process)\n\(run.process.stderr)",
      sourceLocation: sourceLocation)
    for (r, rank) in run.ranks.enumerated() {
      #expect(
        rank.status == 0, "\(what): rank \(r) ended with \(rank.status.map(String.init) ?? "no status")",
        sourceLocation: sourceLocation)
      #expect(!rank.stderr.contains("error:"), "\(what): rank \(r): \(rank.stderr)", sourceLocation: sourceLocation)
      if r > 0 { #expect(rank.stdout.isEmpty, "\(what): rank \(r) stdout: \(rank.stdout)", sourceLocation: sourceLocation) }
    }
    return run.ranks.first?.stdout ?? ""
  }
}
