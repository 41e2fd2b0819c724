import Foundation

/// A latency-bandwidth model of one decode step of a model spread over hosts, for `attnax plan`
/// and docs/BENCHMARKS.md ("Multi-node").
///
/// A message between hosts costs `latency + overhead + bytes / bandwidth` (the link's one-way
/// latency, this runtime's software cost per message over TCP, the bytes at the link's rate).
/// A decode step of one sequence moves d_model floats per message, and:
/// - **one host** computes every layer: `hostSeconds` (measured, or the weights over the
///   host's memory bandwidth);
/// - **tp across hosts**: each host reads 1/H of the weights (decode is memory-bound, so the
///   compute divides by H) but every layer's two allreduces (and the embedding's and the
///   sampler's) cross the network, each ⌈log₂ H⌉ rounds (recursive doubling);
/// - **pp across hosts** (tp within each host): the stages run one after the other, so the
///   compute is one host's, and H messages cross per token (an activation row to each next
///   stage, the token back to the first).
/// Inside a host, tp's allreduces cost ``intraHost`` per round (shared memory).
struct LinkModel: Sendable {
  /// Hosts.
  var hosts: Int
  /// Ranks per host (tp inside a host).
  var ranksPerHost: Int
  /// One-way latency between hosts, seconds.
  var latency: Double
  /// Link rate, bytes per second.
  var bandwidth: Double
  /// Software cost of one message between hosts (MPI over TCP, polling), seconds.
  var overhead: Double
  /// One round of an allreduce inside a host, seconds.
  var intraHost: Double

  /// The seconds one message of `bytes` takes between two hosts.
  func message(_ bytes: Double) -> Double { latency + overhead + bytes / bandwidth }

  /// The ways of spreading a model over the hosts that the model compares.
  enum Layout: String, CaseIterable, Sendable {
    case oneHost = "one host"
    case tpAcross = "tp across hosts"
    case ppAcross = "pp across hosts, tp within"
  }

  /// What one decode step of one sequence costs in a layout.
  struct Prediction: Sendable {
    /// The layout.
    var layout: Layout
    /// Seconds per token.
    var seconds: Double
    /// Messages that cross between hosts per token (per host for tp's allreduce rounds).
    var messages: Double
    /// Bytes that cross between hosts per token (per host).
    var bytes: Double
    /// Weight bytes each host holds.
    var weightsPerHost: Double
    /// Tokens per second.
    var tokensPerSecond: Double { 1 / seconds }
  }

  /// The model's figures the prediction needs.
  struct ModelFigures: Sendable {
    /// Layers.
    var layers: Int
    /// d_model.
    var dModel: Int
    /// Bytes of every weight.
    var weightBytes: Double
    /// Seconds of one decode step of one sequence on one host (all its cores).
    var hostSeconds: Double
  }

  /// log₂ of `n` rounded up (0 for 1).
  static func rounds(_ n: Int) -> Double { n <= 1 ? 0 : ceil(log2(Double(n))) }

  /// The prediction for `layout`.
  func predict(_ layout: Layout, _ m: ModelFigures) -> Prediction {
    let row = Double(m.dModel * 4)
    let allreduces = Double(2 * m.layers + 2)  // two per layer, the embedding's, the sampler's
    let within = allreduces * Self.rounds(ranksPerHost) * intraHost
    switch layout {
    case .oneHost:  // one process, every core: no allreduce at all
      return Prediction(layout: layout, seconds: m.hostSeconds, messages: 0, bytes: 0, weightsPerHost: m.weightBytes)
    case .tpAcross:
      let r = Self.rounds(hosts)
      return Prediction(
        layout: layout, seconds: m.hostSeconds / Double(hosts) + within + allreduces * r * message(row),
        messages: allreduces * r, bytes: allreduces * r * row, weightsPerHost: m.weightBytes / Double(hosts))
    case .ppAcross:
      let h = Double(hosts)
      let bytes = (h - 1) * row + h * 4
      return Prediction(
        layout: layout, seconds: m.hostSeconds + within + (h - 1) * message(row) + message(4), messages: h,
        bytes: bytes, weightsPerHost: m.weightBytes / h)
    }
  }

  /// The fastest layout whose weights fit `hostMemory` bytes per host (all when nil); nil when
  /// none fits. `acrossHosts`: only the layouts that use every host (tp or pp across them).
  func best(_ m: ModelFigures, hostMemory: Double? = nil, acrossHosts: Bool = false) -> Prediction? {
    Layout.allCases.filter { !acrossHosts || $0 != .oneHost }.map { predict($0, m) }
      .filter { hostMemory == nil || $0.weightsPerHost <= hostMemory! }
      .filter { $0.layout == .oneHost || hosts > 1 }
      .min { $0.seconds < $1.seconds }
  }
}
