import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

/// Runs one ``BenchCase`` on every rank in lockstep; every loop decision is made from values
/// that are identical on all ranks (allreduced), so no rank can leave a collective early.
struct BenchRunner {
  let world: Communicator
  let grid: ProcessGrid
  let bench: Bench
  let c: BenchCase

  func say(_ line: String) {
    guard world.rank == 0 else { return }
    if bench.json { FileHandle.standardError.write((line + "\n").data(using: .utf8)!) } else { print(line); fflush(nil) }
  }

  func run() throws {
    let cfg = c.config
    say(
      "bench \(c.name): \(c.shapeText); np \(world.size) (tp \(grid.tpSize) x cp \(grid.cpSize)), \(BLASCore.summary)"
    )
    try world.barrier()
    let rssBefore = Memory.currentRSS
    let stack = try BlockStack(
      config: cfg, source: StoredWeights(RandomWeights(seed: 1234), storage: bench.weights.storage), grid: grid)
    let rssAfter = Memory.currentRSS
    let inventory = stack.weightInventory
    say("  " + (try inventory.line(world, storage: bench.weights.storage)))
    let weightBytes = rssAfter - rssBefore
    let weightsPerRank = try world.valuesByRank(weightBytes)
    let params = cfg.parameterShapes.values.reduce(0) { $0 + $1.reduce(1, *) }
    say(
      String(
        format: "  parameters %.1f M (%@ float32); resident weights per rank (RSS after load - before): %@",
        Double(params) / 1e6, Memory.text(params * 4), weightsPerRank.map(Memory.text).joined(separator: ", ")))
    // Query and KV heads of every rank (balanced to ±1 query head; KV heads replicated where shared).
    let queryHeads = try world.valuesByRank(stack.plan.queryHeads.count),
      kvHeads = try world.valuesByRank(stack.plan.kvHeads.count)
    say(
      "  heads per rank: query \(queryHeads.map(String.init).joined(separator: " / ")), KV \(kvHeads.map(String.init).joined(separator: " / "))"
    )

    var fields: [(String, BenchJSON)] = [
      ("config", .string(c.name)), ("np", .int(world.size)), ("tp", .int(grid.tpSize)), ("cp", .int(grid.cpSize)),
      ("block", .string(cfg.block.rawValue)), ("batch", .int(c.batch)), ("seq", .int(c.seq)),
      ("d_model", .int(cfg.dModel)), ("heads", .int(cfg.numHeads)), ("kv_heads", .int(cfg.kvHeads)), ("d_ff", .int(cfg.dFF)),
      ("attention", .string(cfg.attentionType.rawValue)), ("causal", .bool(cfg.scoreMods.contains(.causal))),
      ("decode", .bool(c.decode)), ("parameters", .int(params)),
      ("blas_threads", .int(BLAS.threads)), ("blas_core", .string(BLAS.coreName)),
      ("blas_core_source", .string(BLASCore.source)), ("blas_core_openblas", .string(BLASCore.openBLASChoice)),
      ("simd", .string(Kernels.name)),
      ("weights_rss_bytes_per_rank", .ints(weightsPerRank)), ("weights", .string(bench.weights.rawValue)),
      ("weight_bytes_by_type", .string(inventory.summary)),
      ("query_heads_per_rank", .ints(queryHeads)), ("kv_heads_per_rank", .ints(kvHeads)),
      ("loadavg_1m_start", .double(Memory.loadAverage)),
    ]
    if let e = c.encoderSeq { fields.append(("encoder_seq", .int(e))) }

    if bench.loadOnly {
      let peak = try world.valuesByRank(Memory.peakRSS)
      fields += [("peak_rss_bytes", .int(peak.max() ?? 0)), ("peak_rss_bytes_per_rank", .ints(peak))]
      say("  peak RSS per rank: \(peak.map(Memory.text).joined(separator: ", ")) (load only)")
      emit(fields)
      return
    }

    let timing = try c.decode ? timeDecode(stack) : timePrefill(stack)
    let times = timing.times
    let median = Self.median(times), best = times.min() ?? 0
    let gflops = c.flops / median / 1e9
    let peak = try world.valuesByRank(Memory.peakRSS)
    let n = Double(times.count)
    fields += [
      ("median_ms", .double(median * 1e3)), ("min_ms", .double(best * 1e3)), ("iterations", .int(times.count)),
      ("times_ms", .doubles(times.map { $0 * 1e3 })),
      ("flops", .double(c.flops)), ("gflops", .double(gflops)),
      ("ms_per_token", .double(median * 1e3 / Double(c.batch * (c.decode ? 1 : c.seq)))),
      ("peak_rss_bytes", .int(peak.max() ?? 0)), ("peak_rss_bytes_per_rank", .ints(peak)),
      ("loadavg_1m_end", .double(Memory.loadAverage)),
      ("cpu_ms_per_rank", .doubles(try world.valuesByRank(Int(timing.cpuSeconds / n * 1e9)).map { Double($0) / 1e6 })),
    ]
    say(
      String(
        format: "  median %.3f ms, min %.3f ms over %d forwards; %.1f GFLOP/s (%.2f GFLOP matmul per forward); load average %.1f",
        median * 1e3, best * 1e3, times.count, gflops, c.flops / 1e9, Memory.loadAverage))
    say("  peak RSS per rank: \(peak.map(Memory.text).joined(separator: ", ")) (max \(Memory.text(peak.max() ?? 0)))")
    let cpu = try world.valuesByRank(Int(timing.cpuSeconds / n * 1e9)).map { Double($0) / 1e6 }
    say(
      "  CPU time per forward per rank (user+sys, all threads): \(cpu.map { String(format: "%.1f", $0) }.joined(separator: ", ")) ms"
    )

    if c.decode && !bench.noCommProbe { fields += try decodeBound(stack, median: median, weightsPerRank: weightsPerRank) }

    if grid.cpSize > 1 && !c.decode {
      // Per-rank sums over the timed forwards, as integer nanoseconds/bytes.
      let fwd = try world.valuesByRank(Int(timing.forwardSeconds * 1e9))
      let comp = try world.valuesByRank(Int(timing.ringComputeSeconds * 1e9))
      let wait = try world.valuesByRank(Int(timing.ringWaitSeconds * 1e9))
      let bytes = try world.valuesByRank(timing.ringBytes / max(times.count, 1))
      // Forward compute of a rank = its forward time minus the time it sat waiting for ring shards.
      let work = zip(fwd, wait).map { Double($0 - $1) / 1e9 / n }
      let imbalance = (work.max() ?? 0) / max(work.min() ?? 1, 1e-12) - 1
      let ringComp = comp.map { Double($0) / 1e9 / n }, ringWait = wait.map { Double($0) / 1e9 / n }
      let ringImbalance = (ringComp.max() ?? 0) / max(ringComp.min() ?? 1, 1e-12) - 1
      fields += [
        ("forward_compute_ms_per_rank", .doubles(work.map { $0 * 1e3 })),
        ("compute_imbalance", .double(imbalance)),
        ("ring_compute_ms_per_rank", .doubles(ringComp.map { $0 * 1e3 })),
        ("ring_wait_ms_per_rank", .doubles(ringWait.map { $0 * 1e3 })),
        ("ring_compute_imbalance", .double(ringImbalance)),
        ("ring_bytes_sent_per_rank", .ints(bytes)),
      ]
      say(
        String(
          format: "  forward compute per rank (forward - ring wait): %@ ms; imbalance max/min-1 = %.1f%%",
          work.map { String(format: "%.1f", $0 * 1e3) }.joined(separator: ", "), imbalance * 100))
      say(
        String(
          format: "  ring attention per rank: compute %@ ms, wait %@ ms (ring compute imbalance %.1f%%); sent %@ per forward",
          ringComp.map { String(format: "%.1f", $0 * 1e3) }.joined(separator: ", "),
          ringWait.map { String(format: "%.1f", $0 * 1e3) }.joined(separator: ", "), ringImbalance * 100,
          bytes.map(Memory.text).joined(separator: ", ")))
      if !bench.noCommProbe {
        let steps = (grid.cpSize - 1) * cfg.numLayers * (cfg.block == .decoder ? 2 : 1)
        let perStep = (bytes.max() ?? 0) / max(steps, 1)
        let probe = try commProbe(bytesPerStep: perStep, steps: steps)
        let exposed = ringWait.max() ?? 0
        let hidden = probe > 0 ? max(0, min(1, 1 - exposed / probe)) : 1
        fields += [
          ("comm_blocking_ms", .double(probe * 1e3)),
          ("comm_bandwidth_gbs", .double(probe > 0 ? Double(perStep * steps) / probe / 1e9 : 0)),
          ("hidden_comm_share", .double(hidden)),
        ]
        say(
          String(
            format:
              "  communication: the same ring transfers alone (blocking, no compute) take %.2f ms per forward (%.2f GB/s per rank); "
              + "exposed wait (max over ranks) %.2f ms -> hidden share 1 - wait/blocking = %.0f%%",
            probe * 1e3, probe > 0 ? Double(perStep * steps) / probe / 1e9 : 0, exposed * 1e3, hidden * 100))
      }
    }
    if grid.tpSize > 1 { fields += try allreduceReport(timing, stack: stack) }
    emit(fields)
  }

  func emit(_ fields: [(String, BenchJSON)]) {
    guard bench.json, world.rank == 0 else { return }
    print(BenchJSON.object(fields)); fflush(nil)
  }

  struct Timing {
    var times: [Double] = []  // per forward, max over ranks (identical on every rank)
    var forwardSeconds = 0.0  // this rank's sums over the timed forwards
    var ringComputeSeconds = 0.0
    var ringWaitSeconds = 0.0
    var ringBytes = 0
    var allreduceSeconds: [Double] = []  // this rank's tp allreduces in the timed forwards, per call
    var allreduceBytes: [Int] = []
    var cpuSeconds = 0.0  // this rank's process CPU time (all threads) over the timed bodies
    /// tp > 1: per forward, the fastest and slowest rank's compute (the forward less its tp
    /// allreduces, so less the waiting for peers); identical on every rank.
    var rankCompute: [(fastest: Double, slowest: Double)] = []
  }

  /// Every rank's rows of a deterministic global (batch, length, features) input: element
  /// (b, g, f) depends only on its global index, so the shard equals `layout.scatter(global)`.
  func input(seed: UInt64, batch: Int, length: Int, features: Int, layout: SequenceLayout, rank: Int) -> Tensor {
    let rows = layout.pieces(of: rank)
    let n = rows.reduce(0) { $0 + $1.count }
    var out = [Float](repeating: 0, count: batch * n * features)
    out.withUnsafeMutableBufferPointer { p in
      var i = 0
      for b in 0..<batch {
        for piece in rows {
          for g in piece {
            let base = UInt64((b * length + g) * features)
            for f in 0..<features {
              var z = (seed &* 0x9E37_79B9_7F4A_7C15) &+ (base + UInt64(f)) &* 0xBF58_476D_1CE4_E5B9
              z = (z ^ (z >> 31)) &* 0x94D0_49BB_1331_11EB
              z ^= z >> 29
              p[i] = Float(z >> 40) / Float(1 << 24) * 2 - 1
              i += 1
            }
          }
        }
      }
    }
    return Tensor(shape: [batch, n, features], data: out)
  }

  /// Forward on local shards (sequence over the cp ring), lengths passed so no collective runs
  /// outside the block itself.
  func timePrefill(_ stack: BlockStack) throws -> Timing {
    let d = c.config.dModel
    let selfLayout = stack.layout(length: c.seq)
    var local = BlockInputs(x: input(seed: 1, batch: c.batch, length: c.seq, features: d, layout: selfLayout, rank: grid.cpRank))
    if let e = c.encoderSeq, c.config.block == .decoder {
      local.encoderOutput = input(
        seed: 2, batch: c.batch, length: e, features: d, layout: stack.crossLayout(length: e), rank: grid.cpRank)
    }
    return try repeatLoop { () throws -> Double in
      let t0 = monotonic()
      let y = try stack(local, length: c.seq, encoderLength: c.encoderSeq)
      let t = monotonic() - t0
      precondition(y.shape[0] == c.batch)
      return t
    }
  }

  /// One new token after `seq - 1` cached ones: the caches are emptied and re-filled by an
  /// untimed prefill before every timed step, so each step sees exactly `seq - 1` cached tokens.
  func timeDecode(_ stack: BlockStack) throws -> Timing {
    let d = c.config.dModel, past = c.seq - 1
    let full = SequenceLayout(length: c.seq, parts: 1, kind: .contiguous)
    let all = input(seed: 1, batch: c.batch, length: c.seq, features: d, layout: full, rank: 0)
    var prefill = [Float](), step = [Float]()
    for b in 0..<c.batch {
      let row = all.data[(b * c.seq * d)..<((b + 1) * c.seq * d)]
      prefill += row.prefix(past * d); step += row.suffix(d)
    }
    let prefillX = Tensor(shape: [c.batch, past, d], data: prefill), stepX = Tensor(shape: [c.batch, 1, d], data: step)
    let caches = stack.makeCaches(batch: c.batch, maxLen: c.seq)
    return try repeatLoop(before: {
      for cache in caches { cache.reset() }
      _ = try stack(BlockInputs(x: prefillX), caches: caches)
    }) { () throws -> Double in
      let t0 = monotonic()
      _ = try stack(BlockInputs(x: stepX), caches: caches)
      return monotonic() - t0
    }
  }

  /// Warm-up, then timed bodies until the stop rule holds. Each timed body starts after a world
  /// barrier; its time is the maximum over ranks.
  func repeatLoop(before: () throws -> Void = {}, _ body: () throws -> Double) throws -> Timing {
    var t = Timing()
    for _ in 0..<bench.warmup {
      try before()
      try world.barrier()
      _ = try body()
    }
    var medians: [Double] = []
    while true {
      try before()
      try world.barrier()
      RingProfile.reset()
      let cpu0 = Memory.cpuSeconds
      AllreduceProfile.reset()
      AllreduceProfile.isRecording = true
      let local = try body()
      AllreduceProfile.isRecording = false
      t.allreduceSeconds += AllreduceProfile.durations
      t.allreduceBytes += AllreduceProfile.bytes
      t.cpuSeconds += Memory.cpuSeconds - cpu0
      t.forwardSeconds += local
      t.ringComputeSeconds += RingProfile.computeSeconds
      t.ringWaitSeconds += RingProfile.waitSeconds
      t.ringBytes += RingProfile.bytesSent
      let slowest = Double(try world.allreduceMax(Int(local * 1e9))) / 1e9
      t.times.append(slowest)
      if grid.tp.size > 1 {
        let computed = Int((local - AllreduceProfile.durations.reduce(0, +)) * 1e9)
        t.rankCompute.append((Double(try world.allreduceMin(computed)) / 1e9, Double(try world.allreduceMax(computed)) / 1e9))
      }
      medians.append(Self.median(t.times))
      let n = t.times.count
      let settled = n >= 3 && medians.suffix(3).allSatisfy { abs($0 - medians[n - 1]) <= 0.01 * medians[n - 1] }
      let spent = t.times.reduce(0, +)
      if n >= bench.maxRepeat || (n >= bench.repeats && (settled || spent >= bench.budget)) { break }
    }
    return t
  }

  static func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted(), n = s.count
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
  }

  func monotonic() -> Double { MonotonicClock.seconds() }
}
