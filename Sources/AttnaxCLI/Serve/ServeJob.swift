import AttnaxBlocks
import AttnaxDist
import AttnaxTokenizers
import Foundation
import Synchronization

/// What a request asks the engine for, once checked: a completion (chat or plain prompt), or
/// sentence embeddings.
enum JobWork: Sendable {
  /// Generate after `prompt`.
  case completion(CompletionSpec)
  /// Embed each token list.
  case embedding([[Int32]])
}

/// A checked completion request.
struct CompletionSpec: Sendable {
  /// The prompt's token ids (chat messages already through the template).
  var prompt: [Int32]
  /// New tokens at most.
  var maxTokens: Int
  /// Greedy or sampled.
  var sampling: SamplingOptions
  /// Stop strings: the text ends before the first one.
  var stop: [String]
  /// Server-sent events, one chunk per piece of text.
  var stream: Bool
  /// A last chunk with the usage (`stream_options.include_usage`).
  var includeUsage: Bool
}

/// Why a completion ended, as OpenAI names it.
enum FinishReason: String, Sendable {
  /// An end-of-turn token or a stop string.
  case stop
  /// `max_tokens` reached.
  case length
}

/// Where a job's results go (the HTTP connection that asked). Called on the serving thread;
/// implementations hand the bytes to their own event loop.
protocol JobSink: AnyObject, Sendable {
  /// A piece of the completion's text (streaming only; never empty).
  func delta(_ text: String)
  /// The completion ended: the whole text (non-streaming), the reason and the token counts.
  func finish(text: String, reason: FinishReason, promptTokens: Int, completionTokens: Int)
  /// The embeddings of an embedding job and its token count.
  func embeddings(_ vectors: [[Float]], tokens: Int)
  /// The job cannot be served (a rank failed, the drain ran out of time).
  func fail(_ error: APIError)
}

/// One request inside the server: its work, its sink, and (rank 0's) progress: the slot it
/// holds, the prompt tokens fed so far, the tokens chosen, and the text not yet sent.
final class ServeJob: @unchecked Sendable {
  /// `chatcmpl-N`, `cmpl-N` or `embd-N`: the response id, and the log's.
  let id: String
  /// The route it came from (for logs and metrics).
  let route: String
  let work: JobWork
  let sink: any JobSink
  /// Set from the connection's event loop when the client goes away.
  private let cancelFlag = Mutex(false)
  /// Monotonic seconds at arrival, first token and latest token.
  let arrived = MonotonicClock.seconds()
  var firstTokenAt: Double?
  var lastTokenAt: Double?
  /// Seconds between consecutive tokens (for the request's log line).
  var gaps: [Double] = []

  // Rank 0's progress; touched by the serving thread only.
  var slot: Int32?
  var fed = 0
  var tokens: [Int32] = []
  /// Tokens chosen, an ending end-of-turn token included (the usage's completion tokens).
  var sampled = 0
  var detokenizer: StreamingDetokenizer?
  /// Decoded text (UTF-8) and how much of it was sent.
  var text: [UInt8] = []
  var sent = 0
  var finished = false

  init(id: String, route: String, work: JobWork, sink: any JobSink) {
    self.id = id; self.route = route; self.work = work; self.sink = sink
  }

  /// Asks the server to drop the job at the next step (the client disconnected).
  func cancel() { cancelFlag.withLock { $0 = true } }
  var isCancelled: Bool { cancelFlag.withLock { $0 } }

  var spec: CompletionSpec? { if case .completion(let s) = work { return s } else { return nil } }

  /// Positions its cache holds: the prompt and every new token.
  var capacity: Int { spec.map { $0.prompt.count + $0.maxTokens } ?? 0 }

  /// The prompt tokens still to feed.
  var remainingPrompt: Int { (spec?.prompt.count ?? 0) - fed }

  /// Takes a chosen token; returns the finish reason when the completion ended with it.
  /// Text goes to the sink as it becomes final: incomplete UTF-8 and any tail that may begin a
  /// stop string are held back; a stop string cuts the text before it.
  func accept(_ token: Int32, stopTokens: Set<Int32>, now: Double) -> FinishReason? {
    guard let spec else { return nil }
    if let last = lastTokenAt { gaps.append(now - last) } else { firstTokenAt = now }
    lastTokenAt = now
    sampled += 1
    if stopTokens.contains(token) { return .stop }
    tokens.append(token)
    if let piece = detokenizer?.append(token) { text += Array(piece.utf8) }
    if cutAtStop() {
      flush(upTo: text.count)
      return .stop
    }
    if tokens.count >= spec.maxTokens {
      drainDetokenizer()
      let cut = cutAtStop()
      flush(upTo: text.count)
      return cut ? .stop : .length
    }
    flush(upTo: text.count - Self.heldBack(text, stops: spec.stop))
    return nil
  }

  /// The end: whatever text is left goes out.
  func finalText() -> String {
    drainDetokenizer()
    _ = cutAtStop()
    flush(upTo: text.count)
    return String(decoding: text, as: UTF8.self)
  }

  /// Appends the text the detokenizer still holds (incomplete UTF-8 at the end); no more comes.
  private func drainDetokenizer() {
    if let tail = detokenizer?.flush() { text += Array(tail.utf8) }
    detokenizer = nil
  }

  /// Cuts the text before the first stop string among what was not sent yet (and the bytes a
  /// stop string spanning into it may start with); whether one was found.
  private func cutAtStop() -> Bool {
    guard let stops = spec?.stop,
      let cut = Self.firstMatch(of: stops, in: text, from: max(0, sent - Self.longest(stops)))
    else { return false }
    text.removeSubrange(cut...)
    return true
  }

  /// Sends text[sent..<end] when streaming.
  private func flush(upTo end: Int) {
    guard end > sent else { return }
    if spec?.stream == true { sink.delta(String(decoding: text[sent..<end], as: UTF8.self)) }
    sent = end
  }

  static func longest(_ stops: [String]) -> Int { stops.map(\.utf8.count).max() ?? 0 }

  /// The byte offset of the earliest stop string in `text` at or after `from`.
  static func firstMatch(of stops: [String], in text: [UInt8], from: Int) -> Int? {
    var best: Int?
    for stop in stops {
      let s = Array(stop.utf8)
      guard !s.isEmpty, text.count >= s.count else { continue }
      var i = from
      while i + s.count <= text.count {
        if text[i] == s[0] && text[i..<(i + s.count)].elementsEqual(s) { best = min(best ?? i, i); break }
        i += 1
      }
    }
    return best
  }

  /// Bytes at the end of `text` that could be the start of a stop string.
  static func heldBack(_ text: [UInt8], stops: [String]) -> Int {
    var keep = 0
    for stop in stops {
      let s = Array(stop.utf8)
      for n in stride(from: min(s.count - 1, text.count), to: keep, by: -1) where text.suffix(n).elementsEqual(s.prefix(n)) {
        keep = n
        break
      }
    }
    return keep
  }
}
