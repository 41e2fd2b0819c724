import AttnaxDist
import AttnaxFormats
import Foundation

/// Where the ranks of a job run, and whether the layout fits the hosts.
///
/// `attnax` prints one line after making the grid (rank 0, on stderr, so stdout stays clean):
///
///     layout: tp 2 x cp 2; tp groups within hosts: yes; hosts: ax-h1[0,1] ax-h2[2,3]
///
/// A tp group is `tp` consecutive world ranks (``ProcessGrid``); its allreduces are the heaviest
/// traffic, so it should sit inside one host, which is what by-slot placement
/// (`mpirun --map-by slot`, the default with a hostfile) gives when each host has a multiple of
/// `tp` slots. The cp ring then crosses hosts. When a tp group spans hosts the line says so.
///
/// The line is printed when the job spans more than one host (on one host it says nothing new),
/// or always with `ATTNAX_LAYOUT=1` in rank 0's environment; `ATTNAX_LAYOUT=0` silences it.
enum Topology {
  /// Every world rank's host name (`MPI_Get_processor_name`), cached after the first gather.
  nonisolated(unsafe) static var cachedHosts: [String]?
  /// The last line printed, so `attnax golden` prints a layout once, not once per case.
  nonisolated(unsafe) static var lastLine: String?

  /// Gathers the host names (collective on the first call: every rank must call it) and
  /// prints the layout line on rank 0 when it is wanted and differs from the last one.
  ///
  /// With pipeline stages (`stageLayers`, one range per stage) the line is always printed and
  /// says which layers each stage's ranks hold.
  static func announce(_ grid: ProcessGrid, stageLayers: [Range<Int>] = []) throws {
    let hosts = try hostnames(grid.world)
    let line = describe(tp: grid.tpSize, cp: grid.cpSize, hosts: hosts, stageLayers: grid.ppSize > 1 ? stageLayers : [])
    guard grid.world.rank == 0, line != lastLine else { return }
    let setting = ProcessInfo.processInfo.environment["ATTNAX_LAYOUT"]
    let wanted = setting == "1" || (setting != "0" && (Set(hosts).count > 1 || grid.ppSize > 1))
    guard wanted else { return }
    lastLine = line
    FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
  }

  /// Every world rank's host name in rank order: two collectives (the longest name, then the
  /// names as bytes, one byte per float, which is exact).
  static func hostnames(_ world: Communicator) throws -> [String] {
    if let cachedHosts, cachedHosts.count == world.size { return cachedHosts }
    let mine = Array(Communicator.processorName.utf8)
    var names = [String(decoding: mine, as: UTF8.self)]
    if world.size > 1 {
      let width = try world.allreduceMax(mine.count)
      let padded = (mine + [UInt8](repeating: 0, count: width - mine.count)).map(Float.init)
      let all = try world.allgather(padded)
      names = (0..<world.size).map { r in
        let bytes = all[(r * width)..<((r + 1) * width)].map { UInt8($0) }.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
      }
    }
    cachedHosts = names
    return names
  }

  /// The layout line for a tp x cp grid whose world rank r runs on `hosts[r]`; with pipeline
  /// stages (`stageLayers`, one range per stage) a tp x cp x pp grid, and which layers each
  /// stage's ranks hold on which hosts.
  static func describe(tp: Int, cp: Int, hosts: [String], stageLayers: [Range<Int>] = []) -> String {
    var order: [String] = []
    var ranks: [String: [Int]] = [:]
    for (r, h) in hosts.enumerated() {
      if ranks[h] == nil { order.append(h) }
      ranks[h, default: []].append(r)
    }
    var split: [String] = []
    for g in 0..<(cp * max(1, stageLayers.count)) {  // every tp group (cp of them per stage)
      let members = Array((g * tp)..<min((g + 1) * tp, hosts.count))
      let on = members.map { hosts[$0] }
      if Set(on).count > 1 {
        split.append("ranks \(members.map(String.init).joined(separator: ",")) on \(on.joined(separator: ","))")
      }
    }
    let within = split.isEmpty ? "yes" : "no (\(split.prefix(2).joined(separator: "; "))\(split.count > 2 ? "; ..." : ""))"
    let placed = order.map { "\($0)[\(compact(ranks[$0]!))]" }.joined(separator: " ")
    guard !stageLayers.isEmpty else { return "layout: tp \(tp) x cp \(cp); tp groups within hosts: \(within); hosts: \(placed)" }
    return "layout: tp \(tp) x cp \(cp) x pp \(stageLayers.count); tp groups within hosts: \(within); hosts: \(placed); "
      + describeStages(stageLayers, ranksPerStage: tp * cp, hosts: hosts)
  }

  /// "stages: layers 0-14 on ranks 0,1 (ax-h1), layers 15-29 on ranks 2,3 (ax-h2)".
  static func describeStages(_ layers: [Range<Int>], ranksPerStage: Int, hosts: [String]) -> String {
    let parts = layers.enumerated().map { s, range in
      let ranks = Array((s * ranksPerStage)..<min((s + 1) * ranksPerStage, hosts.count))
      var on: [String] = []
      for r in ranks where !on.contains(hosts[r]) { on.append(hosts[r]) }
      return "layers \(range.lowerBound)-\(range.upperBound - 1) on ranks \(compact(ranks)) (\(on.joined(separator: ",")))"
    }
    return "stages: " + parts.joined(separator: ", ")
  }

  /// `0,1` for short lists, runs of three or more as `4-7`.
  static func compact(_ ranks: [Int]) -> String {
    var parts: [String] = []
    var i = 0
    while i < ranks.count {
      var j = i
      while j + 1 < ranks.count, ranks[j + 1] == ranks[j] + 1 { j += 1 }
      if j - i >= 2 { parts.append("\(ranks[i])-\(ranks[j])") } else { parts += ranks[i...j].map(String.init) }
      i = j + 1
    }
    return parts.joined(separator: ",")
  }
}
