import AttnaxBlocks
import AttnaxDist
import AttnaxTokenizers
import Foundation
import Logging

/// The server's limits, from the command line.
struct ServeLimits: Sendable {
  /// Sequences decoding at once (slots).
  var maxBatch: Int
  /// Requests waiting for a slot at most.
  var maxQueue: Int
  /// Positions of one request: prompt and new tokens.
  var context: Int
  /// Prompt tokens fed per forward pass of one request (and per step over all requests).
  var prefillChunk: Int
  /// Seconds a SIGTERM drain may take before the rest is refused.
  var drainSeconds: Double
}

/// Rank 0's serving loop: continuous batching. Every step it takes new requests, drops the
/// cancelled ones, gives free slots to waiting requests (first come, first served), and plans
/// one forward pass over the decoding sequences (in groups of
/// ``TransformerModel/rowInvariantRows``, and with pipeline stages at least one group per stage)
/// plus prompt chunks of at most `prefillChunk` tokens
/// (each its own pass, so a long prompt never holds the others back for more than one chunk);
/// the plan is broadcast and every rank runs it. Chosen tokens go to their requests, which stream
/// text and end; their slots are given back in the next plan.
///
/// A request's numbers depend on nothing else in the batch: its prompt chunks are its own
/// passes, cut where only its length says; its decode row is one of at most
/// `rowInvariantRows` rows whose products compute each row alone; attention reads its own cache;
/// its sampler's noise depends on its seed and token index only (docs/SERVING.md).
final class Scheduler {
  let world: Communicator
  let engine: StepEngine
  let inbox: Inbox
  let limits: ServeLimits
  let metrics: ServeMetrics
  let logger: Logger
  /// End-of-turn / EOS ids: a completion ends when one is chosen.
  let stopTokens: Set<Int32>
  /// Detokenizer factory (nil: the model has no tokenizer).
  let tokenizer: Tokenizer?
  /// Seconds the idle loop waits before a heartbeat plan.
  let heartbeat: Double

  /// Decode rows per forward pass (``TransformerModel/rowInvariantRows``, read once).
  private let decodeGroup: Int
  private var waiting: [ServeJob] = []
  /// Completions holding a slot.
  private var running: [ServeJob] = []
  /// The embedding jobs of the step being run (they hold no slot and end with the step).
  private var embedding: [ServeJob] = []
  private var releases: [Int32] = []
  private var freeSlots: [Int32] = []
  private var nextSlot: Int32 = 0
  private var drainStarted: Double?

  init(
    world: Communicator, engine: StepEngine, inbox: Inbox, limits: ServeLimits, metrics: ServeMetrics,
    logger: Logger, stopTokens: Set<Int32>, tokenizer: Tokenizer?
  ) {
    self.world = world; self.engine = engine; self.inbox = inbox; self.limits = limits
    self.metrics = metrics; self.logger = logger; self.stopTokens = stopTokens; self.tokenizer = tokenizer
    heartbeat = min(0.5, world.timeout / 4)
    decodeGroup = max(1, engine.model.rowInvariantRows)
  }

  /// Serves until a drain ends; then tells the other ranks to stop. Throws when a step fails
  /// (a rank died or stalled): every request in flight has been answered with an error first.
  func run() throws {
    while true {
      let idle = running.isEmpty && waiting.isEmpty
      waiting += inbox.take(wait: idle ? heartbeat : 0)
      dropCancelled()
      if case .draining = inbox.current {
        let start = drainStarted ?? MonotonicClock.seconds()
        drainStarted = start
        if running.isEmpty && waiting.isEmpty { break }
        if MonotonicClock.seconds() - start > limits.drainSeconds {
          failAll(APIError.unavailable("the server is shutting down: the drain took longer than --drain-seconds"))
          break
        }
      }
      var plan = makePlan()
      if plan.isEmpty && world.size == 1 { continue }
      do {
        plan = try StepPlan.broadcast(plan, world: world)
        let (t0, meter) = (MonotonicClock.seconds(), CommunicationMeter.reading)
        let outcome = try engine.run(plan)
        if !plan.forwards.isEmpty {
          let waited = (CommunicationMeter.reading - meter).seconds
          metrics.stepCommunication.record(waited)
          metrics.stepCompute.record(max(0, MonotonicClock.seconds() - t0 - waited))
        }
        deliver(outcome, plan: plan)
      } catch {
        let why = "a rank failed: \(error)"
        inbox.fail(why)
        failAll(APIError.unavailable(why))
        throw error
      }
    }
    var stop = StepPlan()
    stop.stop = true
    _ = try StepPlan.broadcast(stop, world: world)
  }

  /// The other ranks: follow rank 0's plans until it says stop.
  static func follow(world: Communicator, engine: StepEngine) throws {
    while true {
      let plan = try StepPlan.broadcast(StepPlan(), world: world)
      if plan.stop { return }
      _ = try engine.run(plan)
    }
  }

  // MARK: Planning

  private func makePlan() -> StepPlan {
    var plan = StepPlan()
    plan.releases = releases
    releases = []
    // Embedding jobs need no slot: every waiting one runs in this step.
    for job in waiting { if case .embedding(let ids) = job.work { embedding.append(job); plan.embeddings.append(ids) } }
    if !embedding.isEmpty {
      waiting.removeAll { job in embedding.contains { $0 === job } }
      inbox.dequeued(embedding.count)
    }
    while running.count < limits.maxBatch, let i = waiting.firstIndex(where: { $0.spec != nil }) {
      let job = waiting.remove(at: i)
      inbox.dequeued(1)
      let slot =
        freeSlots.popLast()
        ?? {
          nextSlot += 1; return nextSlot - 1
        }()
      job.slot = slot
      job.detokenizer = tokenizer?.makeStreamingDetokenizer(skipSpecial: true)
      plan.admissions.append(.init(slot: slot, capacity: Int32(job.capacity)))
      running.append(job)
    }
    let decoding = running.filter { $0.remainingPrompt == 0 }
    // With pipeline stages, at least one group per stage (when there are rows enough), so every
    // stage has a pass to run while the next stage runs the one before; smaller groups keep the
    // rows' numbers (each row is computed alone in a group of up to decodeGroup).
    let stages = engine.model.stage.count
    let group = stages > 1 ? max(1, min(decodeGroup, (decoding.count + stages - 1) / stages)) : decodeGroup
    for start in stride(from: 0, to: decoding.count, by: group) {
      plan.forwards.append(
        decoding[start..<min(start + group, decoding.count)].map { job in
          StepPlan.PlannedRow(
            slot: job.slot!, tokens: [job.tokens.last!],
            sampling: .init(options: job.spec!.sampling, step: Int32(job.tokens.count)))
        })
    }
    var budget = limits.prefillChunk
    for job in running where job.remainingPrompt > 0 && budget > 0 {
      let spec = job.spec!
      let n = min(job.remainingPrompt, limits.prefillChunk)
      let last = job.fed + n == spec.prompt.count
      plan.forwards.append([
        StepPlan.PlannedRow(
          slot: job.slot!, tokens: Array(spec.prompt[job.fed..<(job.fed + n)]),
          sampling: last ? .init(options: spec.sampling, step: 0) : nil)
      ])
      job.fed += n
      budget -= n
    }
    metrics.queueDepth.set(Int64(waiting.count))
    metrics.running.set(Int64(running.count))
    if !plan.forwards.isEmpty { metrics.batchSize.record(Double(decoding.count)) }
    return plan
  }

  // MARK: Results

  private func deliver(_ outcome: StepEngine.Outcome, plan: StepPlan) {
    let now = MonotonicClock.seconds()
    for (job, vectors) in zip(embedding, outcome.embeddings) {
      guard case .embedding(let ids) = job.work else { continue }
      let tokens = ids.map(\.count).reduce(0, +)
      job.sink.embeddings(vectors, tokens: tokens)
      metrics.promptTokens.increment(by: Int64(tokens))
      end(job, status: 200, note: "\(ids.count) texts, \(tokens) tokens")
    }
    embedding = []
    for job in running {
      guard let slot = job.slot, let token = outcome.tokens[slot] else { continue }
      let first = job.firstTokenAt == nil
      if let reason = job.accept(token, stopTokens: stopTokens, now: now) {
        finish(job, reason: reason)
      }
      metrics.generatedTokens.increment()
      if first {
        metrics.timeToFirstToken.record(now - job.arrived)
      } else if let gap = job.gaps.last {
        metrics.interTokenLatency.record(gap)
      }
    }
    running.removeAll(where: \.finished)
  }

  private func finish(_ job: ServeJob, reason: FinishReason) {
    let spec = job.spec!
    let text = job.finalText()
    job.sink.finish(text: text, reason: reason, promptTokens: spec.prompt.count, completionTokens: job.sampled)
    metrics.promptTokens.increment(by: Int64(spec.prompt.count))
    release(job)
    end(
      job, status: 200,
      note: "prompt \(spec.prompt.count) tokens, completion \(job.sampled) tokens, finish \(reason.rawValue)")
  }

  private func release(_ job: ServeJob) {
    job.finished = true
    if let slot = job.slot {
      releases.append(slot)
      freeSlots.append(slot)
      job.slot = nil
    }
  }

  /// Cancelled (disconnected) requests leave now; their slots go back in this step's plan.
  private func dropCancelled() {
    for job in running where job.isCancelled {
      release(job)
      end(job, status: 499, note: "client disconnected after \(job.tokens.count) tokens")
    }
    running.removeAll(where: \.finished)
    let gone = waiting.filter(\.isCancelled)
    if !gone.isEmpty {
      waiting.removeAll(where: \.isCancelled)
      inbox.dequeued(gone.count)
      for job in gone { end(job, status: 499, note: "client disconnected while queued") }
    }
  }

  /// Every request still here gets `error`.
  private func failAll(_ error: APIError) {
    let left = running + embedding + waiting + inbox.take(wait: 0)
    for job in left {
      job.sink.fail(error)
      release(job)
      end(job, status: error.status, note: error.message)
    }
    inbox.dequeued(waiting.count)
    running = []
    embedding = []
    waiting = []
  }

  /// The request's log line and its count in the metrics.
  private func end(_ job: ServeJob, status: Int, note: String) {
    let now = MonotonicClock.seconds()
    var line = "\(job.id) \(job.route) \(status): \(note); total \(Self.ms(now - job.arrived))"
    if let first = job.firstTokenAt { line += ", first token \(Self.ms(first - job.arrived))" }
    if !job.gaps.isEmpty { line += ", inter-token \(Self.ms(job.gaps.reduce(0, +) / Double(job.gaps.count))) mean" }
    logger.info("\(line)")
    metrics.countRequest(route: job.route, status: status)
  }

  static func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }
}
