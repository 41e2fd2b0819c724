import Foundation
import Prometheus
import Synchronization

/// The server's Prometheus metrics (swift-prometheus), served as text at `/metrics`: requests
/// by route and status, prompt and generated tokens, queue depth, running requests, batch size
/// per step, time to first token and inter-token latency, and rank 0's time per step in compute
/// and in communication (waiting for the other ranks and stages included).
final class ServeMetrics: Sendable {
  let registry = PrometheusCollectorRegistry()
  /// Prompt tokens of finished requests (completions and embeddings).
  let promptTokens: Counter
  /// Tokens chosen for completions.
  let generatedTokens: Counter
  /// Requests waiting for a slot.
  let queueDepth: Gauge
  /// Requests holding a slot.
  let running: Gauge
  /// Sequences decoding per step.
  let batchSize: ValueHistogram
  /// Seconds from arrival to the first token.
  let timeToFirstToken: ValueHistogram
  /// Seconds between consecutive tokens of a request.
  let interTokenLatency: ValueHistogram
  /// Rank 0's seconds per step outside communication.
  let stepCompute: ValueHistogram
  /// Rank 0's seconds per step waiting for communication (``CommunicationMeter``).
  let stepCommunication: ValueHistogram
  private let requestCounters = Mutex<[String: Counter]>([:])

  init() {
    promptTokens = registry.makeCounter(descriptor: Self.name("attnax_prompt_tokens_total", "Prompt tokens of finished requests"))
    generatedTokens = registry.makeCounter(descriptor: Self.name("attnax_generated_tokens_total", "Tokens generated"))
    queueDepth = registry.makeGauge(descriptor: Self.name("attnax_queue_depth", "Requests waiting for a slot"))
    running = registry.makeGauge(descriptor: Self.name("attnax_running_requests", "Requests holding a slot"))
    batchSize = registry.makeValueHistogram(
      descriptor: Self.name("attnax_batch_size", "Sequences decoding per step"), buckets: [1, 2, 4, 8, 12, 16, 24, 32, 64])
    let latency: [Double] = [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12]
    timeToFirstToken = registry.makeValueHistogram(
      descriptor: Self.name("attnax_time_to_first_token_seconds", "Seconds from a request's arrival to its first token"),
      buckets: latency)
    interTokenLatency = registry.makeValueHistogram(
      descriptor: Self.name("attnax_inter_token_latency_seconds", "Seconds between a request's consecutive tokens"),
      buckets: latency)
    let step: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64]
    stepCompute = registry.makeValueHistogram(
      descriptor: Self.name("attnax_step_compute_seconds", "Rank 0's seconds per step outside communication"), buckets: step)
    stepCommunication = registry.makeValueHistogram(
      descriptor: Self.name(
        "attnax_step_communication_seconds", "Rank 0's seconds per step waiting for communication (other ranks and stages)"),
      buckets: step)
  }

  static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
  }

  /// Counts a finished request.
  func countRequest(route: String, status: Int) {
    let route = ServeRoutes.routes[route] == nil ? "other" : route
    let counter = requestCounters.withLock { counters in
      let key = "\(route) \(status)"
      if let c = counters[key] { return c }
      let c = registry.makeCounter(
        descriptor: Self.name("attnax_requests_total", "Requests answered"), labels: [("route", route), ("status", "\(status)")])
      counters[key] = c
      return c
    }
    counter.increment()
  }

  /// The exposition text.
  func text(queueDepth depth: Int) -> String {
    queueDepth.set(Int64(depth))
    return registry.emitToString()
  }
}
