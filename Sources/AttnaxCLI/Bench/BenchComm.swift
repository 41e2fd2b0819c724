import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

/// The communication probes of `attnax bench`: what the block's transfers cost alone, to judge
/// how well the block uses the network (cp ring: hidden share; tp allreduce: efficiency).
extension BenchRunner {
  /// Seconds the cp ring takes to move `steps` shards of `bytesPerStep` to the next rank with
  /// nothing else running (isend/irecv + wait per step, as the ring does); best of 3.
  func commProbe(bytesPerStep: Int, steps: Int) throws -> Double {
    let cp = grid.cp
    guard cp.size > 1, bytesPerStep > 0, steps > 0 else { return 0 }
    let send = UnsafeMutableRawBufferPointer.allocate(byteCount: bytesPerStep, alignment: 64)
    let recv = UnsafeMutableRawBufferPointer.allocate(byteCount: bytesPerStep, alignment: 64)
    defer { send.deallocate(); recv.deallocate() }
    send.initializeMemory(as: UInt8.self, repeating: 1)
    recv.initializeMemory(as: UInt8.self, repeating: 0)
    let next = (cp.rank + 1) % cp.size, prev = (cp.rank - 1 + cp.size) % cp.size
    var best = Double.infinity
    for _ in 0..<3 {
      try world.barrier()
      let t0 = monotonic()
      for _ in 0..<steps {
        let r1 = try cp.isend(UnsafeRawBufferPointer(send), to: next, tag: 91)
        let r2 = try cp.irecv(recv, from: prev, tag: 91)
        try cp.waitAll([r1, r2])
      }
      let local = monotonic() - t0
      best = min(best, Double(try world.allreduceMax(Int(local * 1e9))) / 1e9)
    }
    return best
  }

  /// The tp allreduces of the timed forwards against MPI's blocking `MPI_Allreduce` of the
  /// same size on the same communicator, as report fields (and lines for rank 0).
  ///
  /// Estimator: a call's time on a rank includes waiting for the last peer to arrive, so the
  /// fair time of one call is its minimum over the ranks of the tp group (the last to arrive);
  /// the in-block figure is the median over calls (of bytes / time), pooled over all tp groups.
  /// The probes time each repetition the same way after a barrier (median of
  /// ``allreduceProbeRepeats``). Back-to-back probe calls find their buffers and both cores
  /// warm, which a call between two matrix products does not; so the bare call is also timed
  /// *in the block*: ``inBlockBareForwards`` more forwards with ``AllreduceAlgorithm/bare``.
  func allreduceReport(_ timing: Timing, stack: BlockStack) throws -> [(String, BenchJSON)] {
    let tp = grid.tp, forwards = max(timing.times.count, 1)
    guard let inBlock = try inBlockFigures(timing) else {
      say("  tp allreduce: ranks recorded different numbers of allreduces; no figures")
      return []
    }
    let bytes = inBlock.bytes
    let algorithm = tp.resolvedAlgorithm(tp.allreduceAlgorithm, count: bytes / 4)
    var fields: [(String, BenchJSON)] = [
      ("allreduce_calls_per_forward", .double(Double(inBlock.calls) / Double(forwards))),
      ("allreduce_bytes_per_call", .int(bytes)),
      ("allreduce_algorithm", .string(algorithm.rawValue)),
      ("allreduce_inblock_ms", .double(inBlock.seconds * 1e3)),
      ("allreduce_inblock_gbs", .double(inBlock.gbs)),
    ]
    // Time each rank spent inside the allreduces per forward, waiting for its peers included:
    // the forward minus this is the rank's compute.
    let perRank = try world.valuesByRank(Int(timing.allreduceSeconds.reduce(0, +) / Double(forwards) * 1e9)).map {
      Double($0) / 1e6
    }
    fields.append(("allreduce_ms_per_forward_per_rank", .doubles(perRank)))
    // How far apart the ranks computed: the forward waits for the slowest at every allreduce.
    if !timing.rankCompute.isEmpty {
      let fastest = BenchRunner.median(timing.rankCompute.map(\.fastest)),
        slowest = BenchRunner.median(timing.rankCompute.map(\.slowest))
      let spread = BenchRunner.median(timing.rankCompute.map { $0.slowest > 0 ? ($0.slowest - $0.fastest) / $0.slowest : 0 })
      fields += [
        ("rank_compute_ms_fastest", .double(fastest * 1e3)), ("rank_compute_ms_slowest", .double(slowest * 1e3)),
        ("rank_compute_spread", .double(spread)),
      ]
      say(
        String(
          format:
            "  tp ranks' compute per forward (its tp allreduces excluded), medians: fastest %.1f ms, slowest %.1f ms; the fastest finishes %.0f%% earlier (median over forwards)",
          fastest * 1e3, slowest * 1e3, spread * 100))
    }
    var line = String(
      format:
        "  tp allreduce in the block: %.1f calls per forward of %@ (%@): %.3f ms = %.2f GB/s per call (min over tp ranks, median)",
      Double(inBlock.calls) / Double(forwards), sizeText(bytes), algorithm.rawValue, inBlock.seconds * 1e3, inBlock.gbs)
    guard !bench.noCommProbe else { say(line); return fields }

    let bare = try probeAllreduce(bytes: bytes, nil)
    let nbc = try probeAllreduce(bytes: bytes, .nonblockingCollective)
    let ring = try probeAllreduce(bytes: bytes, .ring)
    let efficiency = bare > 0 ? inBlock.gbs / gbs(bytes, bare) : 0
    fields += [
      ("allreduce_bare_gbs", .double(gbs(bytes, bare))), ("allreduce_efficiency", .double(efficiency)),
      ("allreduce_iallreduce_gbs", .double(gbs(bytes, nbc))), ("allreduce_ring_gbs", .double(gbs(bytes, ring))),
    ]
    line += String(
      format: "; bare blocking MPI_Allreduce alone %.3f ms = %.2f GB/s -> efficiency %.0f%%", bare * 1e3, gbs(bytes, bare),
      efficiency * 100)
    say(line)
    say(
      String(
        format:
          "  the same size alone (back to back, warm): MPI_Iallreduce %.2f GB/s, ring %.2f GB/s, bare MPI_Allreduce %.2f GB/s",
        gbs(bytes, nbc), gbs(bytes, ring), gbs(bytes, bare)))

    if algorithm != .bare, let inBlockBare = try inBlockFigures(try timeInBlockBare(stack)) {
      let fair = inBlock.gbs / max(inBlockBare.gbs, 1e-12)
      fields += [("allreduce_inblock_bare_gbs", .double(inBlockBare.gbs)), ("allreduce_inblock_efficiency", .double(fair))]
      say(
        String(
          format:
            "  bare MPI_Allreduce in the block instead (barrier first, %d forwards): %.3f ms = %.2f GB/s per call -> %@ / bare in the block = %.0f%%",
          BenchRunner.inBlockBareForwards, inBlockBare.seconds * 1e3, inBlockBare.gbs, algorithm.rawValue, fair * 100))
    }

    let sweep = try bench.allreduceProbeSizes()
    guard !sweep.isEmpty else { return fields }
    var table: [[Double]] = [[], [], []]
    say(
      "  allreduce alone on the tp group of \(tp.size) (GB/s, buffer bytes / time): size, bare MPI_Allreduce, MPI_Iallreduce, ring"
    )
    for size in sweep {
      let row = try [nil, AllreduceAlgorithm.nonblockingCollective, .ring].map { gbs(size, try probeAllreduce(bytes: size, $0)) }
      for i in 0..<3 { table[i].append(row[i]) }
      say(
        String(
          format: "    %@%8.2f %8.2f %8.2f", sizeText(size).padding(toLength: 10, withPad: " ", startingAt: 0), row[0], row[1],
          row[2]))
    }
    fields += [
      ("allreduce_sweep_bytes", .ints(sweep)), ("allreduce_sweep_bare_gbs", .doubles(table[0])),
      ("allreduce_sweep_iallreduce_gbs", .doubles(table[1])), ("allreduce_sweep_ring_gbs", .doubles(table[2])),
    ]
    return fields
  }

  /// The in-block allreduces of `timing` (identical on every rank): calls per rank, the median
  /// call's bytes and seconds, and the median over calls of bytes / seconds in GB/s. Nil when
  /// ranks recorded different numbers of calls.
  func inBlockFigures(_ timing: Timing) throws -> (calls: Int, bytes: Int, seconds: Double, gbs: Double)? {
    let calls = timing.allreduceSeconds.count
    guard try world.allreduceMin(calls) == world.allreduceMax(calls), calls > 0 else { return nil }
    let seconds = try pooledMinimum(timing.allreduceSeconds)
    let bytes = timing.allreduceBytes.sorted()[calls / 2]
    let pooledBytes = (0..<world.size).flatMap { _ in timing.allreduceBytes }  // same sequence on every rank
    let perCall = zip(pooledBytes, seconds)
    return (calls, bytes, BenchRunner.median(seconds), BenchRunner.median(perCall.map { gbs($0, $1) }))
  }

  /// Forwards with the bare blocking `MPI_Allreduce` in the block, for the in-block reference.
  static var inBlockBareForwards: Int { 3 }

  /// Times ``inBlockBareForwards`` forwards of `stack` (no warm-up) with the tp allreduces
  /// switched to ``AllreduceAlgorithm/bare``.
  func timeInBlockBare(_ stack: BlockStack) throws -> Timing {
    var quick = bench
    quick.warmup = 0
    quick.repeats = BenchRunner.inBlockBareForwards
    quick.maxRepeat = BenchRunner.inBlockBareForwards
    let runner = BenchRunner(world: world, grid: grid, bench: quick, c: c)
    let saved = grid.tp.allreduceAlgorithm
    grid.tp.allreduceAlgorithm = .bare
    defer { grid.tp.allreduceAlgorithm = saved }
    return try c.decode ? runner.timeDecode(stack) : runner.timePrefill(stack)
  }

  /// Repetitions of each allreduce probe (after one untimed call).
  static var allreduceProbeRepeats: Int { 9 }

  /// Median seconds of one allreduce of `bytes` on the tp group, alone: a world barrier, then
  /// the call (`nil`: the bare blocking `MPI_Allreduce`, which waits in a tp barrier first),
  /// timed per rank, minimum over the tp ranks, pooled over tp groups.
  func probeAllreduce(bytes: Int, _ algorithm: AllreduceAlgorithm?) throws -> Double {
    let tp = grid.tp, count = max(bytes / 4, 1)
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: 1)
    var local: [Double] = []
    for rep in 0...BenchRunner.allreduceProbeRepeats {
      try world.barrier()
      let t: Double
      if let algorithm {
        try tp.barrier()
        let t0 = monotonic()
        try tp.allreduce(buffer, op: .sum, algorithm: algorithm)
        t = monotonic() - t0
      } else {
        t = try tp.timedBlockingAllreduceSum(buffer)
      }
      if rep > 0 { local.append(t) }
    }
    return BenchRunner.median(try pooledMinimum(local))
  }

  /// Per-entry minimum of `local` over the tp group, then every tp group's entries pooled
  /// (each group appears tp times, which leaves the median unchanged). Same length on all ranks.
  func pooledMinimum(_ local: [Double]) throws -> [Double] {
    var values = local.map { Float($0) }
    try values.withUnsafeMutableBufferPointer { try grid.tp.allreduce($0, op: .min, algorithm: .nonblockingCollective) }
    return try world.allgather(values).map { Double($0) }
  }

  func gbs(_ bytes: Int, _ seconds: Double) -> Double { seconds > 0 ? Double(bytes) / seconds / 1e9 : 0 }

  /// Bytes as B, KiB or MiB (allreduce buffers run from a few bytes to megabytes).
  func sizeText(_ bytes: Int) -> String {
    if bytes >= 1 << 20 { return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20)) }
    if bytes >= 1 << 10 { return String(format: "%.1f KiB", Double(bytes) / Double(1 << 10)) }
    return "\(bytes) B"
  }
}

extension Bench {
  /// The sizes of `--allreduce-sizes` in bytes (`4K`, `1.5M`, `8388608`; K and M are powers of
  /// 2), each from 4 bytes to 1 GiB (NaN and infinity refused).
  func allreduceProbeSizes() throws -> [Int] {
    guard let allreduceSizes else { return [] }
    return try allreduceSizes.split(separator: ",").map { item in
      let text = item.trimmingCharacters(in: .whitespaces).uppercased()
      let scale = text.hasSuffix("K") ? 1024.0 : text.hasSuffix("M") ? 1024.0 * 1024 : 1
      guard let value = Double(scale == 1 ? text : String(text.dropLast())), value * scale >= 4, value * scale <= Double(1 << 30)
      else {
        throw ValidationError("option '--allreduce-sizes': '\(item)' is not a size from 4 bytes to 1 GiB (e.g. 4K, 1.5M)")
      }
      return Int(value * scale) / 4 * 4
    }
  }
}
