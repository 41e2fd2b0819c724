import ArgumentParser
import AttnaxBlocks
import AttnaxFormats
import Foundation

/// `attnax plan`: which layout to run a model with on some hosts joined by a link, from the
/// latency-bandwidth model of ``LinkModel`` (fitted on shaped test hosts: docs/BENCHMARKS.md,
/// "Multi-node"). Reads the model's config and the size of its files; runs nothing distributed.
struct Plan: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Advise a layout (one host, tp across hosts, or pp across hosts with tp within) for a model, hosts and link.",
    discussion: """
      Predicts the decode tokens/s of one sequence in each layout from the model's layers, d_model \
      and weight bytes, one host's decode time per token (--host-tokens-per-second as measured by \
      attnax generate on one host, else the weights over this machine's streaming-read bandwidth), \
      and the link: one-way --latency-us, --bandwidth-gbit, and this runtime's cost per message \
      (--overhead-us, fitted on the test hosts). --table prints the predictions for 2, 4 and 8 \
      hosts at 25/100/500 us and 1/10/25 Gbit/s (docs/BENCHMARKS.md).
      """)

  @Option(help: "A GGUF file, a Hugging Face folder or an attnax model directory.") var model: String
  @Option(help: "Hosts (default: the hostfile's, else 2).") var hosts: Int?
  @Option(help: "An mpirun hostfile: one host a line, `slots=N` giving its ranks.") var hostfile: String?
  @Option(help: "Ranks per host (tp within a host; default: the hostfile's slots, else 1).") var ranksPerHost: Int?
  @Option(help: "One-way latency between hosts, microseconds.") var latencyUs: Double = 100
  @Option(help: "Link rate between hosts, Gbit/s.") var bandwidthGbit: Double = 10
  @Option(help: "This runtime's software cost per message between hosts, microseconds (fitted: docs/BENCHMARKS.md).")
  var overheadUs: Double = Plan.fittedOverheadMicroseconds
  @Option(help: "One allreduce round inside a host (shared memory), microseconds.") var intraHostUs: Double = 25
  @Option(help: "One host's decode speed for this model (tokens/s of one sequence, all cores), as measured.")
  var hostTokensPerSecond: Double?
  @Option(help: "Memory per host for weights, GB: layouts whose weights do not fit are not advised.") var hostMemoryGb: Double?
  @Flag(help: "Print the predictions for 2, 4 and 8 hosts at 25/100/500 us and 1/10/25 Gbit/s.") var table = false

  /// The software cost per message fitted on the test hosts (docs/BENCHMARKS.md, "Multi-node").
  static let fittedOverheadMicroseconds = 20.0

  func validate() throws {
    try OptionLimits.validating {
      try OptionLimits.check("--hosts", hosts, 1...4096)
      try OptionLimits.check("--ranks-per-host", ranksPerHost, 1...4096)
      try OptionLimits.check("--latency-us", latencyUs, positiveUpTo: 1e7, unit: "microseconds")
      try OptionLimits.check("--bandwidth-gbit", bandwidthGbit, positiveUpTo: 1e5, atLeast: 1e-6, unit: "Gbit/s")
      try OptionLimits.check("--overhead-us", overheadUs, positiveUpTo: 1e7, unit: "microseconds")
      try OptionLimits.check("--intra-host-us", intraHostUs, positiveUpTo: 1e7, unit: "microseconds")
      try OptionLimits.check("--host-tokens-per-second", hostTokensPerSecond, positiveUpTo: 1e9, atLeast: 1e-9, unit: "tokens/s")
      try OptionLimits.check("--host-memory-gb", hostMemoryGb, positiveUpTo: 1e9, atLeast: 1e-9, unit: "GB")
    }
  }

  func run() throws {
    try Launch.main { world in
      let lines = try advise()
      for line in lines { Launch.say(world, line) }
      return 0
    }
  }

  /// Every line `plan` prints.
  func advise() throws -> [String] {
    let checkpoint = try ModelUse.generate.open(model)
    let config = checkpoint.config
    let bytes = try Self.weightBytes(model)
    let (fileHosts, fileSlots) = try hostfile.map(Self.readHostfile) ?? (nil, nil)
    let h = hosts ?? fileHosts ?? 2, r = ranksPerHost ?? fileSlots ?? 1
    let (hostSeconds, source) = hostDecodeSeconds(bytes: bytes)
    let figures = LinkModel.ModelFigures(
      layers: config.numLayers, dModel: config.dModel, weightBytes: bytes, hostSeconds: hostSeconds)
    var lines = [
      String(
        format: "plan: %@ (%d layers, d_model %d, weights %.0f MB); one host decodes a token in %.2f ms (%@)",
        (model as NSString).lastPathComponent, config.numLayers, config.dModel, bytes / 1e6, hostSeconds * 1000, source)
    ]
    if table {
      lines.append("| hosts | latency | link | one host | tp across | pp across, tp within | across the hosts use |")
      lines.append("|---|---|---|---|---|---|---|")
      for hostCount in [2, 4, 8] {
        for latency in [25.0, 100, 500] {
          for rate in [1.0, 10, 25] {
            let link = linkModel(hosts: hostCount, ranks: r, latencyUs: latency, gbit: rate)
            let p = LinkModel.Layout.allCases.map { link.predict($0, figures) }
            let across = link.best(figures, acrossHosts: true)!
            let faster = link.best(figures)!.layout == .oneHost ? " (one host is faster if the model fits)" : ""
            lines.append(
              "| \(hostCount) | \(Int(latency)) us | \(Int(rate)) Gbit/s | "
                + p.map { String(format: "%.1f", $0.tokensPerSecond) }.joined(separator: " | ")
                + " | \(across.layout == .tpAcross ? "tp" : "pp")\(faster) |")
          }
        }
      }
      return lines
    }
    let link = linkModel(hosts: h, ranks: r, latencyUs: latencyUs, gbit: bandwidthGbit)
    lines.append(
      String(
        format: "link: %d hosts x %d rank(s), one-way latency %.0f us, %.3g Gbit/s, %.0f us per message in software",
        h, r, latencyUs, bandwidthGbit, overheadUs))
    for layout in LinkModel.Layout.allCases {
      let p = link.predict(layout, figures)
      lines.append(
        "  " + layout.rawValue.padding(toLength: 28, withPad: " ", startingAt: 0)
          + String(
            format: "%8.1f tokens/s; %4.0f messages and %7.0f bytes across hosts per token; weights %.0f MB per host",
            p.tokensPerSecond, p.messages, p.bytes, p.weightsPerHost / 1e6))
    }
    let memory = hostMemoryGb.map { $0 * 1e9 }
    guard let best = link.best(figures, hostMemory: memory) else {
      lines.append(
        String(format: "advice: the weights (%.0f MB) do not fit %d hosts of %.1f GB", bytes / 1e6, h, hostMemoryGb ?? 0))
      return lines
    }
    lines.append("advice: \(best.layout.rawValue): " + command(best.layout, hosts: h, ranks: r))
    if best.layout == .oneHost, h > 1, let across = link.best(figures, hostMemory: memory, acrossHosts: true) {
      lines.append(
        String(
          format: "across the %d hosts (for memory, or to serve more): %@ at %.1f tokens/s: ", h, across.layout.rawValue,
          across.tokensPerSecond)
          + command(across.layout, hosts: h, ranks: r))
    }
    return lines
  }

  /// The `scripts/mpirun` line of `layout`.
  func command(_ layout: LinkModel.Layout, hosts h: Int, ranks r: Int) -> String {
    let file = hostfile.map { " --hostfile \($0)" } ?? ""
    switch layout {
    case .oneHost: return "attnax generate --model \(model) (one process on one host, all its cores)"
    case .tpAcross: return "scripts/mpirun -np \(h * r)\(file) --map-by slot attnax generate --model \(model) --tp \(h * r)"
    case .ppAcross:
      return "scripts/mpirun -np \(h * r)\(file) --map-by slot attnax generate --model \(model) --tp \(r) --pp \(h)"
    }
  }

  func linkModel(hosts: Int, ranks: Int, latencyUs: Double, gbit: Double) -> LinkModel {
    LinkModel(
      hosts: hosts, ranksPerHost: ranks, latency: latencyUs * 1e-6, bandwidth: gbit * 1e9 / 8,
      overhead: overheadUs * 1e-6, intraHost: intraHostUs * 1e-6)
  }

  /// One host's seconds per decode token and where the figure comes from.
  func hostDecodeSeconds(bytes: Double) -> (Double, String) {
    if let hostTokensPerSecond { return (1 / hostTokensPerSecond, "--host-tokens-per-second") }
    let threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
    let gbs = Double(1 << 30) / Kernels.streamReadSeconds(threads: threads) / 1e9
    return (bytes / (gbs * 1e9), String(format: "the weights over %.1f GB/s read by %d threads here: the bound", gbs, threads))
  }

  /// The bytes of a model's weights: a GGUF file's size, or a folder's safetensors files.
  static func weightBytes(_ path: String) throws -> Double {
    let fm = FileManager.default
    var isFolder: ObjCBool = false
    _ = fm.fileExists(atPath: path, isDirectory: &isFolder)
    let files =
      isFolder.boolValue
      ? (try fm.contentsOfDirectory(atPath: path)).filter { $0.hasSuffix(".safetensors") }.map {
        (path as NSString).appendingPathComponent($0)
      } : [path]
    return files.reduce(0.0) { total, file in
      total + Double(((try? fm.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.int64Value ?? 0)
    }
  }

  /// Hosts and slots per host (the first host's) of an mpirun hostfile.
  static func readHostfile(_ path: String) throws -> (Int?, Int?) {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
      throw LaunchError.option("--hostfile", "'\(path)' cannot be read")
    }
    let lines = text.split(whereSeparator: \.isNewline).map { $0.split(separator: "#")[0].trimmingCharacters(in: .whitespaces) }
      .filter { !$0.isEmpty }
    guard !lines.isEmpty else { throw LaunchError.option("--hostfile", "'\(path)' names no host") }
    let slots = lines[0].split(separator: " ").first { $0.hasPrefix("slots=") }.flatMap { Int($0.dropFirst(6)) }
    return (lines.count, slots)
  }
}
