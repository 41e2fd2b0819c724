import Foundation

/// Requests handed from the HTTP front to the serving thread, with the back-pressure rule (at
/// most `maxQueue` requests waiting for a slot) and the server's state (serving, draining, failed).
/// Every member is safe to call from any thread.
final class Inbox: @unchecked Sendable {
  private let condition = NSCondition()
  private var arrived: [ServeJob] = []
  /// Accepted requests not yet holding a slot (in the inbox or in the scheduler's waiting list).
  private var queued = 0
  private var state = State.loading
  /// Waiting requests at most; one more is refused with 429.
  let maxQueue: Int

  /// Whether new requests are taken.
  enum State: Sendable, Equatable {
    /// Listening while the model loads: requests get 503.
    case loading
    case serving
    /// SIGTERM: in-flight requests finish, new ones are refused (503).
    case draining
    /// A rank failed: everything is refused (503).
    case failed(String)
  }

  /// What became of a submitted request.
  enum Submission: Sendable, Equatable {
    case accepted
    /// The queue holds `maxQueue` requests already.
    case full
    /// Draining or failed: the reason.
    case refused(String)
  }

  init(maxQueue: Int) { self.maxQueue = maxQueue }

  /// Offers `job` to the server; `onAccept` runs before the serving thread can see the job (a
  /// stream's head goes out before its first chunk).
  func submit(_ job: ServeJob, onAccept: () -> Void = {}) -> Submission {
    condition.lock()
    defer { condition.unlock() }
    switch state {
    case .loading: return .refused("the model is loading")
    case .draining: return .refused("the server is shutting down")
    case .failed(let why): return .refused(why)
    case .serving: break
    }
    guard queued < maxQueue else { return .full }
    queued += 1
    onAccept()
    arrived.append(job)
    condition.signal()
    return .accepted
  }

  /// The requests that arrived since the last call, waiting up to `wait` seconds for one when
  /// there are none (0: no wait).
  func take(wait: Double) -> [ServeJob] {
    condition.lock()
    defer { condition.unlock() }
    if arrived.isEmpty && wait > 0 && state == .serving {
      _ = condition.wait(until: Date(timeIntervalSinceNow: wait))
    }
    defer { arrived = [] }
    return arrived
  }

  /// `count` queued requests got a slot (or left: cancelled, failed).
  func dequeued(_ count: Int) {
    condition.lock()
    queued -= count
    condition.unlock()
  }

  /// Requests waiting for a slot.
  var depth: Int {
    condition.lock()
    defer { condition.unlock() }
    return queued
  }

  /// The server's state.
  var current: State {
    condition.lock()
    defer { condition.unlock() }
    return state
  }

  /// The model is loaded: take requests.
  func open() { set(.serving) }

  /// SIGTERM: stop taking requests and wake the serving thread.
  func beginDrain() { set(.draining) }

  /// A rank failed: refuse everything from now on.
  func fail(_ why: String) { set(.failed(why)) }

  private func set(_ new: State) {
    condition.lock()
    switch (state, new) {
    case (.failed, _), (.draining, .serving), (.draining, .draining): break
    default: state = new
    }
    condition.broadcast()
    condition.unlock()
  }
}
