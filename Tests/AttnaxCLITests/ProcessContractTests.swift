// The process contract for bad input (docs/BAD_INPUTS.md), checked on the real `attnax` binary
// started alone and under scripts/mpirun: one `error: ...` line over all ranks naming the
// culprit, exit status 2 from mpirun and from every rank, nothing misleading on stdout, no
// output file (a pre-created one untouched, no temporary file left beside it), and an end within
// a few seconds, also when only one rank sees the problem or a peer is stuck. Then determinism:
// the same good forward twice gives byte-identical files at every layout.
//
// The library's messages themselves are checked by the unit suites (AttnaxFormatsTests,
// AttnaxBlocksTests, LauncherTests.swift); here each kind of failure is one case, run at the layouts
// where the process behaviour can differ. Every file is built here, in a temp dir, from a small
// generated model (no golden case needed).

import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation
import Testing
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite(
  "Process contract: the attnax binary under mpirun", .serialized,
  .enabled(if: Programs.startsItsOwnRanks, "starts mpirun itself: run it from plain swift test, not under mpirun"))
struct ProcessContractTests {
  /// A refusal must end within this many seconds (an abort after a one-rank failure takes about
  /// 2.5 s: the failing rank's 2 s grace, then mpirun's stop).
  static let limit = 6.0

  // MARK: - Bad config, weights, inputs, output

  @Test("a bad config field is named: a missing field, and a key holding a newline stays on one line")
  func badConfig() throws {
    let w = try Workspace()
    let missing = try w.model("missing", Models.encoder, edit: { $0["d_ff"] = nil })
    let input = try w.input(Models.encoderInput())
    for layout in [Layout.single, .ranks(2), .ranks(3, ["--cp", "3"])] {
      try w.expectRefused(
        ["forward", "--model", missing, "--input", input], layout: layout,
        .exact("error: config field 'd_ff': missing"))
    }
    let newline = try w.model(
      "newline", Models.encoder,
      edit: { c in
        c["l\near_attention_chunk_size"] = c.removeValue(forKey: "linear_attention_chunk_size")
      })
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        ["forward", "--model", newline, "--input", input], layout: layout,
        .exact("error: config field 'l\\u{a}ear_attention_chunk_size': unknown field"))
    }
  }

  @Test("a missing, an unexpected and a mis-shaped weight tensor are named")
  func badWeights() throws {
    let w = try Workspace()
    let input = try w.input(Models.encoderInput())
    let missing = try w.model("missing", Models.encoder, tensors: { $0["layers.0.ffn.dense1.bias"] = nil })
    let extra = try w.model("extra", Models.encoder, tensors: { $0["layers.1.ln1.scale"] = Tensor(zeros: [32]) })
    let shaped = try w.model("shaped", Models.encoder, tensors: { $0["layers.0.ln1.scale"] = Tensor(zeros: [2, 16]) })
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        ["forward", "--model", missing, "--input", input], layout: layout,
        .exact("error: tensor 'layers.0.ffn.dense1.bias': missing from \(missing)/model.safetensors"))
      try w.expectRefused(
        ["forward", "--model", extra, "--input", input], layout: layout,
        .exact(
          "error: tensor 'layers.1.ln1.scale': unexpected in \(extra)/model.safetensors: this config (1 layer(s), gelu, layer norm) does not use it"
        ))
      try w.expectRefused(
        ["forward", "--model", shaped, "--input", input], layout: layout,
        .exact("error: tensor 'layers.0.ln1.scale': shape [2, 16], expected [32]"))
    }
  }

  @Test("a truncated weight file is refused naming the tensor that runs past its end")
  func truncatedWeights() throws {
    let w = try Workspace()
    let input = try w.input(Models.encoderInput())
    let model = try w.model("cut", Models.encoder)
    let file = "\(model)/model.safetensors"
    let shapes = Models.encoder.parameterShapes
    // The writer lays F32 tensors out by name: the last one ends the data section.
    let last = shapes.keys.max { $0.utf8.lexicographicallyPrecedes($1.utf8) }!
    let dataBytes = shapes.values.map { $0.reduce(1, *) * 4 }.reduce(0, +)
    #expect(truncate(file, try fileSize(file) - 8) == 0)
    for layout in [Layout.single, .ranks(2), .ranks(3, ["--cp", "3"])] {
      try w.expectRefused(
        ["forward", "--model", model, "--input", input], layout: layout,
        .exact(
          "error: tensor '\(last)': 'data_offsets' end \(dataBytes) is past the end of the data section (\(dataBytes - 8) bytes) in the header of file '\(file)'"
        ))
    }
  }

  @Test("a NaN or an infinity in a weight slice only one rank loads is refused by every rank, naming tensor and element")
  func nonFiniteWeights() throws {
    let w = try Workspace()
    let input = try w.input(Models.encoderInput())
    // Both kernels are column-parallel: at tp 2, rank 1 alone loads query_proj's columns 16..<32
    // and dense1's columns 32..<64, where the bad values sit.
    let q = "layers.0.self_attn.query_proj.kernel", ffn = "layers.0.ffn.dense1.kernel"
    let nan = try w.model("nan", Models.encoder, tensors: { $0[q]!.data[3 * 32 + 20] = .nan })
    let inf = try w.model("inf", Models.encoder, tensors: { $0[ffn]!.data[7 * 64 + 40] = -.infinity })
    for layout in [Layout.single, .ranks(2)] {
      let found = layout.np == 1 ? "" : " (found on rank 1)"
      try w.expectRefused(
        ["forward", "--model", nan, "--input", input], layout: layout,
        .exact("error: tensor '\(q)': element 116 is nan in file '\(nan)/model.safetensors'; weights must be finite\(found)"))
      try w.expectRefused(
        ["forward", "--model", inf, "--input", input], layout: layout,
        .exact("error: tensor '\(ffn)': element 488 is -inf in file '\(inf)/model.safetensors'; weights must be finite\(found)"))
    }
  }

  @Test("a bad input tensor is refused by every rank: x mis-shaped (inside the forward), a position past the RoPE table under cp")
  func badInputTensor() throws {
    let w = try Workspace()
    let model = try w.model("m", Models.encoder)
    let input = try w.input(["x": .f32(randomTensor([2, 12, 16], seed: 5))])
    for layout in [Layout.single, .ranks(2), .ranks(3, ["--cp", "3"])] {
      try w.expectRefused(
        ["forward", "--model", model, "--input", input], layout: layout,
        .exact("error: input 'x': shape [2, 12, 16] must be (batch, seq, d_model 32)"))
    }
    // Under cp a position past the RoPE table sits in one rank's rows only: the launcher checks
    // the global tensor first, so every rank refuses it together.
    let rope = try w.model("rope", Models.rope)
    let positions = IntTensor(shape: [2, 14], data: (0..<27).map(Int32.init) + [9000])
    let far = try w.input(
      ["x": .f32(randomTensor([2, 14, 32], seed: 8)), "position_ids": .i32(positions)], name: "far.safetensors")
    try w.expectRefused(
      ["forward", "--model", rope, "--input", far], layout: .ranks(2, ["--cp", "2"]),
      .exact("error: input 'position_ids': position 9000 is outside the RoPE table [0, 64) (rope_max_positions)"))
  }

  @Test("an input tensor the model does not read is refused: a decoder given mask instead of self_mask")
  func unreadInputTensor() throws {
    let w = try Workspace()
    let model = try w.model("dec", Models.decoder)
    let input = try w.input([
      "x": .f32(randomTensor([2, 12, 32], seed: 6)), "encoder_output": .f32(randomTensor([2, 10, 32], seed: 7)),
      "mask": .u8(MaskTensor(shape: [2, 1, 1, 12], data: [UInt8](repeating: 1, count: 24))),
    ])
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        ["forward", "--model", model, "--input", input], layout: layout,
        .exact(
          "error: tensor 'mask': in \(input) is not read by this decoder model (it reads: x, encoder_output, self_mask, cross_mask, position_ids_self, position_ids_cross_q, position_ids_cross_kv)"
        ))
    }
  }

  @Test("an output path in a directory that does not exist: refused before the forward, nothing created")
  func outputDirectoryMissing() throws {
    let w = try Workspace()
    let model = try w.model("m", Models.encoder)
    let input = try w.input(Models.encoderInput())
    let output = "\(w.path)/no/such/dir/y.safetensors"
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        ["forward", "--model", model, "--input", input, "--output", output], layout: layout,
        .exact("error: file '\(output)': cannot create a temporary file in '\(w.path)/no/such/dir': No such file or directory"),
        output: .watch(.absent(output)))
    }
    // Checked before the forward: a rank that would fail as the forward starts never gets there.
    try w.expectRefused(
      ["forward", "--model", model, "--input", input, "--output", output], layout: .ranks(2),
      .exact("error: file '\(output)': cannot create a temporary file in '\(w.path)/no/such/dir': No such file or directory"),
      output: .watch(.absent(output)), env: ["ATTNAX_FAULT": "forward", "ATTNAX_FAULT_RANK": "1"])
  }

  @Test("attnax golden refuses a case without tolerances in one line, runs the next and exits 2")
  func goldenRefusedCase() throws {
    let w = try Workspace()
    let good = try w.goldenCase("good")
    let bad = try w.goldenCase("bad", meta: #"{"description": "no tolerance"}"#)
    for layout in [Layout.single, .ranks(2)] {
      let run = try w.launch(["golden", bad, good], layout: layout, detached: true)
      w.expectContract(
        run, .exact("error: bad: file '\(bad)/meta.json': not a JSON object with numbers atol and rtol of the expected form"),
        stdout: [.matching(#"ok   good  max_err \S+  worst err/tol \S+"#), .exact("1 passed, 1 failed")])
    }
  }

  // MARK: - Bad options

  @Test("--tp and --cp that do not fit np, and --timeout 0, are refused on every rank")
  func badLayoutOptions() throws {
    let w = try Workspace()
    let model = try w.model("m", Models.encoder)
    let input = try w.input(Models.encoderInput())
    for layout in [Layout.single, .ranks(2), .ranks(3)] {
      try w.expectRefused(
        ["forward", "--model", model, "--input", input, "--tp", "2", "--cp", "2"], layout: layout,
        .exact("error: layout: np (\(layout.np)) must equal tp (2) x cp (2)"))
    }
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        ["forward", "--model", model, "--input", input, "--timeout", "0"], layout: layout,
        .exact("error: option '--timeout': must be a positive number of seconds, got 0.0"))
    }
  }

  @Test("a usage error (unknown flag, a value that does not parse, a missing value) is one line and exit 2")
  func usageErrors() throws {
    let w = try Workspace()
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        ["generate", "--prompt-ids", "1,2,3", "--bogus"], layout: layout, .exact("error: Unknown option '--bogus'"),
        output: .none)
      try w.expectRefused(
        ["generate", "--prompt-ids", "1,2,3", "--top-k", "x"], layout: layout,
        .exact("error: The value 'x' is invalid for '--top-k <top-k>'"), output: .none)
      try w.expectRefused(
        ["forward", "--tp"], layout: layout, .exact("error: Missing value for '--tp <tp>'"), output: .none)
    }
  }

  @Test("generate refuses --max-new-tokens below 1 or past the model's limit, and a prompt id that is not a number")
  func generateOptions() throws {
    let w = try Workspace()
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        ["generate", "--prompt-ids", "1,2,3", "--max-new-tokens=-1"], layout: layout,
        .exact("error: option '--max-new-tokens': must be at least 1, got -1"), output: .none)
      try w.expectRefused(
        ["generate", "--prompt-ids", "1,2,3", "--max-new-tokens", "300"], layout: layout,
        .exact(
          "error: option '--max-new-tokens': the prompt (3 tokens) and 300 new tokens need 303 positions, but the model holds 256 (max_len (the RoPE table))"
        ),
        output: .none)
      try w.expectRefused(
        ["generate", "--prompt-ids", "1,x,3", "--max-new-tokens", "4"], layout: layout,
        .exact("error: option '--prompt-ids': 'x' is not an integer token id"), output: .none)
    }
  }

  @Test("serve refuses bad flags, a context past the model's positions and a port in use, on every rank")
  func serveOptions() throws {
    let w = try Workspace()
    // A port held by this test process: the server cannot bind it.
    let held = try HeldPort()
    for layout in [Layout.single, .ranks(2)] {
      try w.expectRefused(
        ["serve", "--model", "builtin", "--max-batch", "0"], layout: layout,
        .exact("error: option '--max-batch': must be between 1 and 256, got 0"), output: .none)
      try w.expectRefused(
        ["serve", "--model", "builtin", "--log-level", "loud"], layout: layout,
        .exact(
          "error: option '--log-level': 'loud' is not one of trace, debug, info, notice, warning, error, critical"),
        output: .none)
      try w.expectRefused(
        ["serve", "--model", "builtin", "--context", "999"], layout: layout,
        .exact("error: option '--context': is 999, but the model holds 256 positions (max_len (the RoPE table))"),
        output: .none)
      try w.expectRefused(
        ["serve", "--model", "builtin", "--port", "\(held.port)"], layout: layout,
        .matching("error: option '--port': cannot listen on 127\\.0\\.0\\.1:\(held.port): .*"), output: .none)
    }
  }

  // MARK: - One rank sees the problem

  @Test("one rank's weights unreadable (ATTNAX_FAULT=weights): every rank stops with its message")
  func faultWeights() throws {
    let w = try Workspace()
    let model = try w.model("m", Models.encoder)
    let input = try w.input(Models.encoderInput())
    for layout in [Layout.ranks(2), .ranks(3, ["--cp", "3"])] {
      let rank = layout.np - 1
      try w.expectRefused(
        ["forward", "--model", model, "--input", input], layout: layout,
        .exact(
          "error: tensor 'layers.0.self_attn.query_proj.kernel': this rank's slice is unreadable (injected by ATTNAX_FAULT=weights) (found on rank \(rank))"
        ),
        env: ["ATTNAX_FAULT": "weights", "ATTNAX_FAULT_RANK": "\(rank)"])
    }
  }

  @Test("one rank's input unreadable (ATTNAX_FAULT=input): every rank stops with its message")
  func faultInput() throws {
    let w = try Workspace()
    let model = try w.model("m", Models.encoder)
    let input = try w.input(Models.encoderInput())
    for layout in [Layout.ranks(2), .ranks(3)] {
      let rank = layout.np - 1
      try w.expectRefused(
        ["forward", "--model", model, "--input", input], layout: layout,
        .exact("error: file '\(input)': unreadable on this rank (injected by ATTNAX_FAULT=input) (found on rank \(rank))"),
        env: ["ATTNAX_FAULT": "input", "ATTNAX_FAULT_RANK": "\(rank)"])
    }
  }

  @Test("two ranks fail differently: all stop with the lowest failing rank's message")
  func lowestRankWins() throws {
    let w = try Workspace()
    let model = try w.model("m", Models.encoder)
    let input = try w.input(Models.encoderInput())
    let first = "\(w.path)/first-missing.safetensors", second = "\(w.path)/second-missing.safetensors"
    let run = try w.launchMPMD(
      [
        ["forward", "--model", model, "--input", input], ["forward", "--model", model, "--input", first],
        ["forward", "--model", model, "--input", second],
      ].map { $0 + ["--output", w.output] })
    w.expectContract(run, .exact("error: file '\(first)': cannot be opened: No such file or directory (found on rank 1)"))
  }

  @Test("one rank fails as the forward starts (ATTNAX_FAULT=forward): it aborts the job within seconds")
  func faultForward() throws {
    let w = try Workspace()
    let model = try w.model("m", Models.encoder)
    let input = try w.input(Models.encoderInput())
    for layout in [Layout.ranks(2), .ranks(3, ["--cp", "3"])] {
      let rank = layout.np - 1
      try w.expectRefused(
        ["forward", "--model", model, "--input", input], layout: layout,
        .exact(
          "error: input 'x': rejected on this rank as the forward pass starts (injected by ATTNAX_FAULT=forward) (on rank \(rank))"
        ),
        env: ["ATTNAX_FAULT": "forward", "ATTNAX_FAULT_RANK": "\(rank)"], ending: .abortedBy(rank))
    }
  }

  @Test("a stuck peer (ATTNAX_FAULT=sleep) ends the job after --timeout, naming the rank waited for")
  func stuckPeer() throws {
    let w = try Workspace()
    let model = try w.model("m", Models.encoder)
    let input = try w.input(Models.encoderInput())
    for layout in [Layout.ranks(2, ["--cp", "2"]), .ranks(3, ["--cp", "3"])] {
      let stuck = layout.np - 1
      let run = try w.launch(
        ["forward", "--model", model, "--input", input, "--output", w.output, "--timeout", "1"] + layout.extra, layout: layout,
        env: ["ATTNAX_FAULT": "sleep", "ATTNAX_FAULT_RANK": "\(stuck)", "ATTNAX_FAULT_SECONDS": "60"], detached: false)
      let line = #"error: MPI_I(send|recv) on rank (\d+) timed out after 1\.0 s waiting for rank "# + "\(stuck)"
      // The rank that timed out reports and aborts: it must exit 2 (the others may be stopped).
      let said = run.ranks.lazy.flatMap { $0.stderr.split(separator: "\n") }.first.map(String.init) ?? ""
      var reporter: Int?
      if let regex = try? Regex(line), let m = said.wholeMatch(of: regex), let r = m.output[2].substring { reporter = Int(r) }
      w.expectContract(run, .matching(line), ending: .abortedBy(reporter ?? 0))
      #expect(reporter != stuck, "\(layout.label): the stuck rank itself reported: \(said)")
    }
  }

  // MARK: - Startup agreement

  @Test("ranks given different configs, weight files, inputs or grids are refused before the first collective")
  func startupAgreement() throws {
    let w = try Workspace()
    let a = try w.model("A", Models.encoder)
    let b = try w.model("B", Models.encoder, edit: { $0["dropout_rate"] = 0.1 })
    let c = try w.model("C", Models.encoder, metadata: ["format": "pt"])  // same tensors, another header
    let input = try w.input(Models.encoderInput())
    var other = Models.encoderInput()
    other["x"] = .f32(randomTensor([2, 12, 32], seed: 99))
    let otherInput = try w.input(other, name: "other.safetensors")
    func forward(_ model: String, _ input: String, _ extra: [String] = []) -> [String] {
      ["forward", "--model", model, "--input", input, "--output", w.output] + extra
    }
    w.expectContract(
      try w.launchMPMD([forward(a, input), forward(b, input)]),
      .exact(
        "error: startup agreement: ranks disagree on the config: field(s) 'dropout_rate' (0 vs 0.1) differ between rank 0 and rank 1"
      ))
    w.expectContract(
      try w.launchMPMD([forward(a, input), forward(a, input), forward(b, input)]),
      .exact(
        "error: startup agreement: ranks disagree on the config: field(s) 'dropout_rate' (0 vs 0.1) differ between rank 0 and rank 2"
      ))
    w.expectContract(
      try w.launchMPMD([forward(a, input), forward(c, input)]),
      .exact(
        "error: startup agreement: ranks disagree on the weight file header: rank 0 has '\(a)/model.safetensors', rank 1 has '\(c)/model.safetensors'"
      ))
    w.expectContract(
      try w.launchMPMD([forward(a, input), forward(a, otherInput)]),
      .exact("error: startup agreement: ranks disagree on the input values: rank 0 has '\(input)', rank 1 has '\(otherInput)'"))
    w.expectContract(
      try w.launchMPMD([forward(a, input, ["--tp", "2"]), forward(a, input, ["--cp", "2"])]),
      .exact(
        "error: startup agreement: ranks disagree on the grid (np, tp, cp): rank 0 has np 2, tp 2, cp 1, rank 1 has np 2, tp 1, cp 2"
      ))
  }

  // MARK: - Determinism

  @Test("the same good forward twice gives byte-identical files at np 1, 2, 2 --cp 2 and 3 --cp 3")
  func determinism() throws {
    let w = try Workspace()
    let model = try w.model("ring", Models.ring)
    let x = randomTensor([2, 48, 32], seed: 11)
    let input = try w.input(["x": .f32(x)])
    var first: Tensor?
    for (i, layout) in [Layout.single, .ranks(2), .ranks(2, ["--cp", "2"]), .ranks(3, ["--cp", "3"])].enumerated() {
      var files: [[UInt8]] = []
      for k in 0..<2 {
        let output = "\(w.path)/y\(i)-\(k).safetensors"
        let run = try w.launch(
          ["forward", "--model", model, "--input", input, "--output", output] + layout.extra, layout: layout, detached: true)
        w.expectSuccess(run, stdout: ["wrote y [2, 48, 32] to \(output)"])
        files.append(FileManager.default.contents(atPath: output).map { Array($0) } ?? [])
      }
      #expect(
        !files[0].isEmpty && files[0] == files[1],
        "\(layout.label): the two runs wrote different files (\(files[0].count) vs \(files[1].count) bytes)")
      guard !files[0].isEmpty else { continue }
      let y = try SafetensorsFile(path: "\(w.path)/y\(i)-0.safetensors").float("y")
      #expect(y.shape == x.shape && y.data.allSatisfy(\.isFinite), "\(layout.label): y \(y.shape)")
      // Not a constant: the layouts agree with one process within float32 rounding.
      if let first { expectClose(y, first, atol: 1e-5, rtol: 1e-5, layout.label) } else { first = y }
    }
  }
}

// MARK: - The runner itself

/// The process runner the contract tests trust: what it captures, and that its deadline kills
/// a whole tree, also a descendant in a session of its own (as mpirun's ranks are).
@Suite("Process runner (_TestSupport)")
struct ProcessRunnerTests {
  @Test("exit status, stdout and stderr are captured; the environment is exactly the one given")
  func captures() throws {
    let r = try ProcessRunner.run(
      ["/bin/sh", "-c", "echo out; echo err >&2; echo \"$ONLY\"; exit 3"], environment: ["ONLY": "this"], deadline: 10)
    #expect(r.exitCode == 3 && r.signal == nil && r.status == 3 && !r.timedOut, "\(r)")
    #expect(r.stdout == "out\nthis\n" && r.stderr == "err\n", "\(r.stdout) | \(r.stderr)")
    let env = try ProcessRunner.run(["/usr/bin/env"], environment: ["A": "1"], deadline: 10)
    #expect(env.stdout == "A=1\n", "\(env.stdout)")
  }

  @Test("a program ended by a signal reports it, as status 128 + signal")
  func signal() throws {
    let r = try ProcessRunner.run(["/bin/sh", "-c", "kill -TERM $$"], environment: [:], deadline: 10)
    #expect(r.signal == SIGTERM && r.exitCode == nil && r.status == 128 + SIGTERM, "\(r)")
  }

  @Test("past the deadline the program and a descendant in another session are killed, and the run says so")
  func deadline() throws {
    let dir = NSTemporaryDirectory() + "attnax-runner-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let r = try ProcessRunner.run(
      ["/bin/sh", "-c", "setsid sleep 60 & echo $! > \(dir)/pid; sleep 60"], environment: ["PATH": "/usr/bin:/bin"], deadline: 1)
    #expect(r.timedOut && r.signal == SIGKILL, "\(r)")
    #expect(r.seconds >= 1 && r.seconds < 5, "\(r)")
    let pid = try #require(pid_t(ProcessRunner.contents(ofFile: "\(dir)/pid").trimmingCharacters(in: .whitespacesAndNewlines)))
    // Gone, or a zombie waiting for init: not running.
    var running = true
    for _ in 0..<200 where running {
      let stat = ProcessRunner.contents(ofFile: "/proc/\(pid)/stat")
      running = !stat.isEmpty && !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true)
      if running { usleep(10_000) }
    }
    #expect(!running, "the descendant \(pid) in its own session survived the deadline")
  }
}

// MARK: - Models

/// The small models every case starts from (weights from `RandomWeights`).
enum Models {
  /// 1 layer, d_model 32, 4 heads, d_ff 64: standard attention, LayerNorm, GELU.
  static let encoder = BlockConfig(block: .encoder, dModel: 32, numHeads: 4, dFF: 64)
  /// The same as a decoder block (self- and cross-attention).
  static let decoder = BlockConfig(block: .decoder, dModel: 32, numHeads: 4, dFF: 64)
  /// ``encoder`` with RoPE over a table of 64 positions.
  static let rope = BlockConfig(block: .encoder, dModel: 32, numHeads: 4, dFF: 64, useRoPE: true, ropeMaxPositions: 64)
  /// 2 layers with what the ring path exercises: flash attention in blocks of 8, grouped KV
  /// heads, RoPE, a causal mask, RMSNorm and SwiGLU.
  static let ring = BlockConfig(
    block: .encoder, numLayers: 2, dModel: 32, numHeads: 4, dFF: 64, attentionType: .flash, attentionBlockSize: 8,
    normType: .rms, ffActivation: .swiglu, numKVHeads: 2, useRoPE: true, scoreMods: [.causal])

  /// x of (2, 12, 32) for ``encoder``.
  static func encoderInput() -> [String: SafetensorsValue] { ["x": .f32(randomTensor([2, 12, 32], seed: 3))] }

  /// Every tensor `config` reads, generated.
  static func weights(_ config: some ModelConfiguration) throws -> [String: Tensor] {
    let source = RandomWeights(seed: 17)
    var out: [String: Tensor] = [:]
    for (name, shape) in config.parameterShapes {
      out[name] = try source.load(name, shape: shape, rows: nil, columns: nil)
    }
    return out
  }
}

// MARK: - Starting the CLI

/// Where the programs are.
enum Programs {
  /// `ATTNAX_BIN`, or the `attnax` built beside this test binary.
  static let attnax: String = {
    if let bin = ProcessInfo.processInfo.environment["ATTNAX_BIN"], !bin.isEmpty { return bin }
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return ((me as NSString).deletingLastPathComponent as NSString).appendingPathComponent("attnax")
  }()
  /// The repository's mpirun wrapper.
  static let mpirun = "\(Fixtures.packageRoot)/scripts/mpirun"
  /// False when this test process is itself a rank of a larger mpirun job.
  static var startsItsOwnRanks: Bool { Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] ?? "1") ?? 1 <= 1 }

  /// Records an issue (the suite cannot check anything) unless both can be run.
  static func check(sourceLocation: SourceLocation = #_sourceLocation) throws {
    try #require(
      FileManager.default.isExecutableFile(atPath: attnax),
      "no attnax binary at \(attnax): build it (swift build --build-tests) or set ATTNAX_BIN", sourceLocation: sourceLocation)
    try #require(FileManager.default.isExecutableFile(atPath: mpirun), "\(mpirun) is missing", sourceLocation: sourceLocation)
  }
}

/// How the CLI is started.
enum Layout: Sendable {
  /// The binary by itself: one process, no mpirun.
  case single
  /// `scripts/mpirun -np N`, with extra CLI options (`--cp 3`).
  case ranks(Int, [String] = [])

  var np: Int { if case let .ranks(n, _) = self { return n } else { return 1 } }
  var extra: [String] { if case let .ranks(_, e) = self { return e } else { return [] } }
  var label: String {
    switch self {
    case .single: return "np 1 (no mpirun)"
    case let .ranks(n, e): return (["np \(n)"] + e).joined(separator: " ")
    }
  }
}

/// One run: mpirun's outcome (or the single process's) and each rank's own.
struct Launched {
  struct Rank {
    /// The exit status the rank's wrapper recorded; nil when the wrapper itself was killed.
    var status: Int32?
    var stdout: String
    var stderr: String
  }
  var label: String
  var process: ProcessOutcome
  var ranks: [Rank]
  /// Until the last rank ended (detached ranks may end after mpirun).
  var seconds: Double
}

/// What one error line must be.
struct Message {
  var text: String
  var matches: (String) -> Bool

  static func exact(_ line: String) -> Message { Message(text: line) { $0 == line } }
  static func matching(_ pattern: String) -> Message {
    let regex = try! Regex(pattern)
    return Message(text: "/\(pattern)/") { $0.wholeMatch(of: regex) != nil }
  }
}

/// How every rank must end.
enum Ending {
  /// The ranks agreed on the error: each exits 2 by itself (after MPI_Finalize).
  case agreed
  /// One rank reported and called MPI_Abort(2): it exits 2 and mpirun stops the others
  /// (SIGTERM, then SIGKILL), so they may end by a signal instead.
  case abortedBy(Int)
}

/// The `--output` of a refused run.
enum Output {
  /// `--output` added: absent before a single-process run, pre-created before an mpirun one.
  case auto
  /// No `--output` (generate).
  case none
  /// Given in the arguments: watched as said.
  case watch(OutputWatch)
}

/// The output file a refused run must leave as it was.
enum OutputWatch {
  /// Must not exist afterwards, nor anything beside it.
  case absent(String)
  /// Created before the run with known bytes: same bytes and mtime afterwards, nothing beside it.
  case precreated(String)

  var path: String {
    switch self {
    case let .absent(p), let .precreated(p): return p
    }
  }
}

/// One test's temp dir: builds models, inputs and golden cases, starts the CLI, checks the contract.
final class Workspace {
  let path: String
  /// The default output path (in `out/`, which holds nothing else).
  var output: String { "\(path)/out/y.safetensors" }
  private var runs = 0

  init() throws {
    try Programs.check()
    path = NSTemporaryDirectory() + "attnax-contract-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: "\(path)/out", withIntermediateDirectories: true)
    let script = """
      #!/bin/sh
      # One rank of a process-contract run (Tests/AttnaxCLITests/ProcessContractTests.swift): runs
      # the command and records its exit status in $ATTNAX_RANK_STATUS_DIR/rank.<world rank>.
      #
      # ATTNAX_RANK_DETACH=yes: the rank runs in a session of its own, under a shell that records
      # its status. When a first rank exits 2, mpirun stops the job: SIGTERM to the others (and
      # SIGKILL 1 s later), which could hit a rank still leaving exit() and lose its own status.
      # Detached, mpirun's signals end only this wrapper (setsid, waiting), and the rank ends by
      # itself: the test waits for its status, and kills the session if it never comes.
      # Otherwise (a job aborted by one rank, whose stuck peers mpirun must stop) the shell
      # survives SIGTERM to record the rank's 143; its own notices go to /dev/null.
      status="$ATTNAX_RANK_STATUS_DIR/rank.${OMPI_COMM_WORLD_RANK:-x}"
      if [ "$ATTNAX_RANK_DETACH" = yes ]; then
        exec setsid -w sh -c 'echo $$ > "$0.pid"; "$@"; rc=$?; echo $rc > "$0.tmp"; mv "$0.tmp" "$0"; exit $rc' "$status" "$@"
      fi
      trap ':' TERM INT
      exec 3>&2 2>/dev/null
      ( exec "$@" 2>&3 3>&- )
      rc=$?
      echo $rc > "$status.tmp"; mv "$status.tmp" "$status"
      exit $rc

      """
    try Data(script.utf8).write(to: URL(fileURLWithPath: "\(path)/rank.sh"))
  }

  /// Removed unless ATTNAX_CONTRACT_KEEP=1 (then its path is printed, to rerun a case by hand).
  deinit {
    if ProcessInfo.processInfo.environment["ATTNAX_CONTRACT_KEEP"] == "1" {
      print("kept \(path)")
    } else {
      try? FileManager.default.removeItem(atPath: path)
    }
  }

  // MARK: Files

  /// A model directory `name`: `config` (a block stack, or a full model) encoded (then `edit`ed
  /// as JSON), its generated weights (then `tensors`-edited), written with SafetensorsWriter;
  /// `tokenizer`: the files of that Tests/Fixtures/tokenizers folder copied beside them.
  func model<Config: ModelConfiguration & Encodable>(
    _ name: String, _ config: Config, metadata: [String: String]? = nil, tokenizer: (folder: String, files: [String])? = nil,
    tensors: (inout [String: Tensor]) -> Void = { _ in }, edit: (inout [String: Any]) -> Void = { _ in }
  ) throws -> String {
    let dir = "\(path)/\(name)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as! [String: Any]
    edit(&json)
    let text = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .prettyPrinted])
    try text.write(to: URL(fileURLWithPath: "\(dir)/config.json"))
    var weights = try Models.weights(config)
    tensors(&weights)
    try SafetensorsWriter.write(weights.map { ($0.key, .f32($0.value)) }, to: "\(dir)/model.safetensors", metadata: metadata)
    for file in tokenizer?.files ?? [] {
      try FileManager.default.copyItem(
        atPath: Fixtures.path("tokenizers/\(tokenizer!.folder)/\(file)"), toPath: "\(dir)/\(file)")
    }
    return dir
  }

  /// A text file `name` holding exactly `text`.
  func textFile(_ name: String, _ text: String) throws -> String {
    let file = "\(path)/\(name)"
    try Data(text.utf8).write(to: URL(fileURLWithPath: file))
    return file
  }

  /// An input file.
  func input(_ tensors: [String: SafetensorsValue], name: String = "in.safetensors") throws -> String {
    let file = "\(path)/\(name)"
    try SafetensorsWriter.write(tensors.map { ($0.key, $0.value) }, to: file)
    return file
  }

  /// A golden case folder for ``Models/encoder``: its model, x, the y one process computes, and
  /// `meta` as meta.json.
  func goldenCase(_ name: String, meta: String = #"{"atol": 1e-5, "rtol": 1e-5}"#) throws -> String {
    let dir = try model(name, Models.encoder)
    let x = randomTensor([2, 12, 32], seed: 3)
    let stack = try BlockStack(config: Models.encoder, source: RandomWeights(seed: 17), group: .solo())
    let y = try stack.forward(BlockInputs(x: x))
    try SafetensorsWriter.write([("x", .f32(x)), ("y", .f32(y))], to: "\(dir)/io.safetensors")
    try Data(meta.utf8).write(to: URL(fileURLWithPath: "\(dir)/meta.json"))
    return dir
  }

  // MARK: Running

  /// Runs `attnax ARGS` (plus the layout's extra options) by itself or under scripts/mpirun.
  /// `detached`: every rank in a session of its own, so it ends by itself and its own exit
  /// status is recorded even when mpirun stops the job (see the wrapper); for jobs that end by
  /// one rank's agreed refusal, not for those a rank aborts (mpirun must stop their stuck peers).
  /// `stdin`: what the binary (np 1) or mpirun, which forwards it to rank 0, reads on stdin.
  func launch(
    _ args: [String], layout: Layout, env: [String: String] = [:], detached: Bool, stdin: String? = nil
  ) throws -> Launched {
    switch layout {
    case .single:
      let p = try ProcessRunner.run(
        [Programs.attnax] + args, environment: environment(env), deadline: Self.hang, stdin: stdin.map { Array($0.utf8) })
      return Launched(
        label: layout.label, process: p, ranks: [.init(status: p.timedOut ? nil : p.status, stdout: p.stdout, stderr: p.stderr)],
        seconds: p.seconds)
    case let .ranks(np, _):
      return try mpirun(
        [["-np", "\(np)"] + wrapper + args], np: np, label: layout.label, env: env, detached: detached, stdin: stdin)
    }
  }

  /// mpirun's MPMD form: one rank per entry of `apps`, each its own `attnax` arguments.
  func launchMPMD(_ apps: [[String]], env: [String: String] = [:]) throws -> Launched {
    try mpirun(
      apps.map { ["-np", "1"] + wrapper + $0 }, np: apps.count,
      label: "np " + apps.map { _ in "1" }.joined(separator: ":") + " (MPMD)", env: env, detached: true)
  }

  /// A run is killed (and fails) after this many seconds.
  static let hang = 30.0

  /// Each rank's command before attnax's arguments. The wrapper is read by /bin/sh rather than
  /// executed: exec of a file this process has just written fails with "Text file busy" when a
  /// concurrent fork (another test starting a program) still holds its write descriptor.
  private var wrapper: [String] { ["/bin/sh", "\(path)/rank.sh", Programs.attnax] }

  /// The environment of every run: this process's, without MPI's launch variables, plus `extra`.
  func environment(_ extra: [String: String]) -> [String: String] {
    var env = ProcessRunner.environment()
    if env["OPENBLAS_NUM_THREADS"] == nil { env["OPENBLAS_NUM_THREADS"] = "1" }
    for (k, v) in extra { env[k] = v }
    return env
  }

  private func mpirun(
    _ apps: [[String]], np: Int, label: String, env extra: [String: String], detached: Bool, stdin: String? = nil
  ) throws -> Launched {
    runs += 1
    let statusDir = "\(path)/run\(runs)/status", outputDir = "\(path)/run\(runs)/ranks"
    try FileManager.default.createDirectory(atPath: statusDir, withIntermediateDirectories: true)
    var env = environment(extra)
    env["ATTNAX_RANK_STATUS_DIR"] = statusDir
    env["ATTNAX_RANK_DETACH"] = detached ? "yes" : "no"
    var command = [Programs.mpirun, "--output-filename", outputDir]
    // Detached ranks are out of reach of mpirun's stop (SIGTERM, then SIGKILL after
    // odls_base_sigkill_timeout, 1 s by default): only the wrappers get it, so mpirun need not
    // wait that second before it reports the first rank's status. Jobs one rank aborts keep
    // mpirun's defaults, as users run them.
    if detached { command += ["--mca", "odls_base_sigkill_timeout", "0"] }
    for k in (["ATTNAX_RANK_STATUS_DIR", "ATTNAX_RANK_DETACH"] + extra.keys.sorted()) { command += ["-x", k] }
    command += apps.joined(separator: [":"])
    let t0 = MonotonicClock.seconds()
    let p = try ProcessRunner.run(command, environment: env, deadline: Self.hang, stdin: stdin.map { Array($0.utf8) })
    if detached {
      // Detached ranks may outlive mpirun by a moment: wait for every status, and end the
      // session of a rank that never gives one (a hang).
      // A rank with neither a status nor a session (mpirun could not start it) is not waited for
      // past 2 s.
      let files = (0..<np).map { "\(statusDir)/rank.\($0)" }
      let ended = MonotonicClock.seconds()
      func waiting(_ f: String) -> Bool {
        !FileManager.default.fileExists(atPath: f)
          && (FileManager.default.fileExists(atPath: f + ".pid") || MonotonicClock.seconds() - ended < 2)
      }
      while files.contains(where: waiting) && MonotonicClock.seconds() - t0 < Self.hang {
        usleep(5_000)
      }
      for f in files where !FileManager.default.fileExists(atPath: f) {
        if let session = pid_t(ProcessRunner.contents(ofFile: f + ".pid").trimmingCharacters(in: .whitespacesAndNewlines)) {
          kill(-session, SIGKILL)
        }
      }
    }
    let seconds = MonotonicClock.seconds() - t0
    // mpirun --output-filename DIR writes DIR/1/rank.N/{stdout,stderr}.
    let job = ((try? FileManager.default.contentsOfDirectory(atPath: outputDir)) ?? []).sorted().first.map {
      "\(outputDir)/\($0)"
    }
    let ranks = (0..<np).map { r -> Launched.Rank in
      let recorded = ProcessRunner.contents(ofFile: "\(statusDir)/rank.\(r)").trimmingCharacters(in: .whitespacesAndNewlines)
      let files = job.map { "\($0)/rank.\(r)" }
      return .init(
        status: Int32(recorded), stdout: files.map { ProcessRunner.contents(ofFile: "\($0)/stdout") } ?? "",
        stderr: files.map { ProcessRunner.contents(ofFile: "\($0)/stderr") } ?? "")
    }
    return Launched(label: label, process: p, ranks: ranks, seconds: seconds)
  }

  // MARK: Checking

  /// Runs `args` + `--output` + the layout's options and expects a refusal: see ``expectContract``.
  /// The output is absent before a single-process run and pre-created before an mpirun one.
  func expectRefused(
    _ args: [String], layout: Layout, _ message: Message, output: Output = .auto,
    env: [String: String] = [:], ending: Ending = .agreed, stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let watch: OutputWatch?
    var full = args
    switch output {
    case .auto:
      watch = layout.np == 1 ? .absent(self.output) : .precreated(self.output)
      full += ["--output", self.output]
    case .none: watch = nil
    case let .watch(w): watch = w
    }
    full += layout.extra
    let before = try watch.map { try prepare($0) }
    let run = try launch(
      full, layout: layout, env: env, detached: { if case .agreed = ending { return true } else { return false } }(), stdin: stdin
    )
    expectContract(run, message, ending: ending, sourceLocation: sourceLocation)
    if let watch, let before { expectUnchanged(watch, before, run.label, sourceLocation: sourceLocation) }
  }

  /// The contract for a refused run: mpirun (or the single process) exits 2, so does every rank
  /// (or, after an abort, the aborting rank, the others ending by mpirun's signal at worst); the
  /// ranks' stderr holds exactly one line over all ranks, `message`; stdout holds exactly
  /// `stdout` (rank 0) and nothing on other ranks; the run took at most ``ProcessContractTests/limit`` s.
  func expectContract(
    _ run: Launched, _ message: Message, ending: Ending = .agreed, stdout: [Message] = [],
    sourceLocation: SourceLocation = #_sourceLocation
  ) {
    let what = "\(run.label): \(run.process)"
    #expect(!run.process.timedOut, "\(what): HANG, killed", sourceLocation: sourceLocation)
    #expect(
      run.process.status == 2, "\(what): exit status \(run.process.status), not 2\n\(run.process.stderr)",
      sourceLocation: sourceLocation)
    for (r, rank) in run.ranks.enumerated() {
      switch ending {
      case .agreed:
        #expect(
          rank.status == 2,
          "\(what): rank \(r) ended with \(rank.status.map(String.init) ?? "no status (it never ended)"), not 2",
          sourceLocation: sourceLocation)
      case let .abortedBy(aborter):
        // Stopped by mpirun: SIGTERM (143), SIGKILL (137), or the wrapper killed too (nil).
        let stopped = rank.status == nil || rank.status == 143 || rank.status == 137
        #expect(
          rank.status == 2 || (r != aborter && stopped),
          "\(what): rank \(r) ended with \(rank.status.map(String.init) ?? "no status")", sourceLocation: sourceLocation)
      }
    }
    if case let .abortedBy(aborter) = ending {
      #expect(
        run.ranks[aborter].status == 2, "\(what): the aborting rank \(aborter) did not exit 2", sourceLocation: sourceLocation)
    }
    let lines = run.ranks.enumerated().flatMap { r, rank in nonEmptyLines(rank.stderr).map { "rank \(r): \($0)" } }
    #expect(
      lines.count == 1, "\(what): \(lines.count) lines on stderr over all ranks, not 1:\n\(lines.joined(separator: "\n"))",
      sourceLocation: sourceLocation)
    let first = run.ranks.lazy.flatMap { nonEmptyLines($0.stderr) }.first ?? ""
    #expect(
      message.matches(first), "\(what): the error line\n  \(first)\nis not\n  \(message.text)", sourceLocation: sourceLocation)
    // mpirun repeats the ranks' lines on its own stderr beside its notices: no other error line.
    let foreign = nonEmptyLines(run.process.stderr).filter { $0.hasPrefix("error:") && $0 != first }
    #expect(foreign.isEmpty, "\(what): other error lines on mpirun's stderr: \(foreign)", sourceLocation: sourceLocation)
    expectStdout(run, stdout, what, sourceLocation: sourceLocation)
    #expect(
      run.seconds <= ProcessContractTests.limit,
      "\(what): the ranks ended after \(String(format: "%.1f", run.seconds)) s, not within \(ProcessContractTests.limit) s",
      sourceLocation: sourceLocation)
  }

  /// A good run: exit 0 everywhere, nothing on stderr, `stdout` from rank 0.
  func expectSuccess(_ run: Launched, stdout: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    let what = "\(run.label): \(run.process)"
    #expect(run.process.status == 0 && !run.process.timedOut, "\(what)\n\(run.process.stderr)", sourceLocation: sourceLocation)
    for (r, rank) in run.ranks.enumerated() {
      #expect(
        rank.status == 0, "\(what): rank \(r) ended with \(rank.status.map(String.init) ?? "no status")",
        sourceLocation: sourceLocation)
      #expect(nonEmptyLines(rank.stderr).isEmpty, "\(what): rank \(r) stderr: \(rank.stderr)", sourceLocation: sourceLocation)
    }
    expectStdout(run, stdout.map { .exact($0) }, what, sourceLocation: sourceLocation)
  }

  private func expectStdout(_ run: Launched, _ expected: [Message], _ what: String, sourceLocation: SourceLocation) {
    let rank0 = nonEmptyLines(run.ranks.first?.stdout ?? "")
    #expect(
      rank0.count == expected.count && zip(rank0, expected).allSatisfy { $1.matches($0) },
      "\(what): rank 0 stdout is \(rank0), expected \(expected.map(\.text))", sourceLocation: sourceLocation)
    for (r, rank) in run.ranks.enumerated().dropFirst() {
      #expect(nonEmptyLines(rank.stdout).isEmpty, "\(what): rank \(r) stdout: \(rank.stdout)", sourceLocation: sourceLocation)
    }
  }

  /// The output's state before the run: (bytes, mtime) of a pre-created file, and the listing
  /// of its directory.
  private func prepare(_ watch: OutputWatch) throws -> (bytes: Data?, mtime: timespec?, listing: [String]?) {
    let dir = (watch.path as NSString).deletingLastPathComponent
    try? FileManager.default.removeItem(atPath: watch.path)
    if case let .precreated(p) = watch {
      try Data("precious, must stay\n".utf8).write(to: URL(fileURLWithPath: p))
      var old = timespec(tv_sec: 1_000_000_000, tv_nsec: 123_456_789)  // 2001: a run that rewrites it cannot match
      let times = [old, old]
      _ = utimensat(AT_FDCWD, p, times, 0)
      old = modificationTime(p) ?? old
      return (FileManager.default.contents(atPath: p), old, listing(dir))
    }
    return (nil, nil, listing(dir))
  }

  private func expectUnchanged(
    _ watch: OutputWatch, _ before: (bytes: Data?, mtime: timespec?, listing: [String]?), _ label: String,
    sourceLocation: SourceLocation
  ) {
    let dir = (watch.path as NSString).deletingLastPathComponent
    switch watch {
    case let .absent(p):
      #expect(!FileManager.default.fileExists(atPath: p), "\(label): \(p) was created", sourceLocation: sourceLocation)
    case let .precreated(p):
      #expect(
        FileManager.default.contents(atPath: p) == before.bytes, "\(label): the pre-created \(p) changed",
        sourceLocation: sourceLocation)
      let now = modificationTime(p)
      #expect(
        now?.tv_sec == before.mtime?.tv_sec && now?.tv_nsec == before.mtime?.tv_nsec,
        "\(label): the pre-created output's mtime changed", sourceLocation: sourceLocation)
    }
    #expect(
      listing(dir) == before.listing, "\(label): \(dir) held \(before.listing ?? []) and now \(listing(dir) ?? [])",
      sourceLocation: sourceLocation)
  }

  private func listing(_ dir: String) -> [String]? { (try? FileManager.default.contentsOfDirectory(atPath: dir))?.sorted() }
}

private func nonEmptyLines(_ text: String) -> [String] {
  text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init).filter {
    !$0.trimmingCharacters(in: .whitespaces).isEmpty
  }
}

private func modificationTime(_ path: String) -> timespec? {
  var st = stat()
  guard stat(path, &st) == 0 else { return nil }
  return st.st_mtim
}

private func fileSize(_ path: String) throws -> Int {
  (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
}

/// A TCP port on 127.0.0.1 held (bound and listening) by this process until it ends.
struct HeldPort {
  let fd: Int32
  let port: Int

  init() throws {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    self.fd = fd
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
        bind(fd, p, len) == 0 && listen(fd, 1) == 0 && getsockname(fd, p, &len) == 0
      }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    port = Int(UInt16(bigEndian: addr.sin_port))
  }
}
