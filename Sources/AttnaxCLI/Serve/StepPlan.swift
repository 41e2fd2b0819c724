import AttnaxBlocks
import AttnaxDist
import Foundation

/// What every rank does in one step of the server, decided by rank 0 and broadcast before the
/// step: caches to free and to allocate, the forward passes (each a batch of sequences), and the
/// embedding jobs. The other ranks only follow plans; an empty plan is a heartbeat, which keeps
/// their deadline-bounded wait for the next one short while the server is idle.
struct StepPlan: Equatable {
  /// Every rank leaves the serving loop (after a drain, or when rank 0 fails).
  var stop = false
  /// Slots whose caches are given back.
  var releases: [Int32] = []
  /// New slots and the positions their caches hold.
  var admissions: [Admission] = []
  /// Forward passes, in order: each a batch of sequences stacked into one pass.
  var forwards: [[PlannedRow]] = []
  /// Embedding jobs (encoder models): the token ids of each text of each job.
  var embeddings: [[[Int32]]] = []

  /// A new slot.
  struct Admission: Equatable {
    var slot: Int32
    var capacity: Int32
  }

  /// One sequence of a forward pass: its slot, the tokens it appends, and how to choose its next
  /// token (nil for a prompt chunk that is not the prompt's last).
  struct PlannedRow: Equatable {
    var slot: Int32
    var tokens: [Int32]
    var sampling: RowSampling?
  }

  /// A row's sampling: the request's options and the index of the token being chosen (the
  /// sampler's noise depends on the seed and that index only, so on nothing else in the batch).
  struct RowSampling: Equatable {
    var options: SamplingOptions
    var step: Int32
  }

  /// True when the plan does nothing (a heartbeat).
  var isEmpty: Bool { !stop && releases.isEmpty && admissions.isEmpty && forwards.isEmpty && embeddings.isEmpty }

  // MARK: Wire format: little-endian Int32 words

  func encoded() -> [UInt8] {
    var w: [Int32] = [Self.magic, stop ? 1 : 0, Int32(releases.count)]
    w += releases
    w.append(Int32(admissions.count))
    for a in admissions { w += [a.slot, a.capacity] }
    w.append(Int32(forwards.count))
    for rows in forwards {
      w.append(Int32(rows.count))
      for r in rows {
        w += [r.slot, Int32(r.tokens.count)] + r.tokens
        if let s = r.sampling {
          let o = s.options
          w += [
            1, Int32(bitPattern: o.temperature.bitPattern), Int32(clamping: o.topK), Int32(bitPattern: o.topP.bitPattern),
            Int32(truncatingIfNeeded: o.seed), Int32(truncatingIfNeeded: o.seed >> 32), s.step,
          ]
        } else {
          w.append(0)
        }
      }
    }
    w.append(Int32(embeddings.count))
    for job in embeddings {
      w.append(Int32(job.count))
      for ids in job { w += [Int32(ids.count)] + ids }
    }
    return w.withUnsafeBytes { Array($0) }
  }

  /// The plan `bytes` encode; nil if they are not a whole plan (never from a peer of this build).
  init?(decoding bytes: [UInt8]) {
    guard bytes.count % 4 == 0 else { return nil }
    let words = bytes.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    var r = WordReader(words: words)
    guard r.next() == Self.magic, let stop = r.next() else { return nil }
    self.stop = stop != 0
    guard let releases = r.list({ $0.next() }) else { return nil }
    self.releases = releases
    guard let admissions = r.list({ r in r.next().flatMap { s in r.next().map { Admission(slot: s, capacity: $0) } } }) else {
      return nil
    }
    self.admissions = admissions
    guard
      let forwards = r.list({ r in
        r.list { r -> PlannedRow? in
          guard let slot = r.next(), let tokens = r.list({ $0.next() }), let has = r.next() else { return nil }
          guard has != 0 else { return PlannedRow(slot: slot, tokens: tokens, sampling: nil) }
          guard let t = r.next(), let k = r.next(), let p = r.next(), let lo = r.next(), let hi = r.next(), let step = r.next()
          else { return nil }
          let options = SamplingOptions(
            temperature: Float(bitPattern: UInt32(bitPattern: t)), topK: Int(k), topP: Float(bitPattern: UInt32(bitPattern: p)),
            seed: UInt64(UInt32(bitPattern: lo)) | UInt64(UInt32(bitPattern: hi)) << 32)
          return PlannedRow(slot: slot, tokens: tokens, sampling: RowSampling(options: options, step: step))
        }
      })
    else { return nil }
    self.forwards = forwards
    guard let embeddings = r.list({ r in r.list { r in r.list { $0.next() } } }), r.atEnd else { return nil }
    self.embeddings = embeddings
  }

  init() {}

  static let magic: Int32 = 0x5354_4550  // "STEP"

  /// Rank 0's plan on every rank (`plan` is ignored elsewhere), under the world's deadline.
  static func broadcast(_ plan: StepPlan, world: Communicator) throws -> StepPlan {
    guard world.size > 1 else { return plan }
    var bytes = world.rank == 0 ? plan.encoded() : []
    try world.broadcast(&bytes, root: 0, idle: true)
    guard let decoded = StepPlan(decoding: bytes) else {
      throw LaunchError.failed("serve: rank \(world.rank) received a step plan it cannot read")
    }
    return decoded
  }
}

/// Reads Int32 words in order; every read past the end is nil.
private struct WordReader {
  let words: [Int32]
  var index = 0

  mutating func next() -> Int32? {
    guard index < words.count else { return nil }
    defer { index += 1 }
    return words[index]
  }

  /// A count then that many items.
  mutating func list<T>(_ item: (inout WordReader) -> T?) -> [T]? {
    guard let n = next(), n >= 0, n <= words.count - index else { return nil }
    var out: [T] = []
    for _ in 0..<n {
      guard let x = item(&self) else { return nil }
      out.append(x)
    }
    return out
  }

  var atEnd: Bool { index == words.count }
}
