import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

/// Test hooks that make one rank fail, so the reliability tests (ProcessContractTests in
/// Tests/AttnaxCLITests, scripts/test-kill-rank) can check that a problem on one rank stops every rank. Off unless
/// `ATTNAX_FAULT` is set; documented in docs/BAD_INPUTS.md. Not for production use.
///
/// - `ATTNAX_FAULT=weights`: this rank's weight loading fails as if its slice were unreadable.
/// - `ATTNAX_FAULT=input`: this rank's input file reads as bad.
/// - `ATTNAX_FAULT=forward`: this rank fails as it enters the forward pass, after the others
///   have entered it (they wait in a collective it never joins).
/// - `ATTNAX_FAULT=sleep`: this rank sleeps `ATTNAX_FAULT_SECONDS` (default 3600) as it enters
///   the forward pass: a stuck peer.
/// - `ATTNAX_FAULT=die`: this rank SIGKILLs itself `ATTNAX_FAULT_AFTER` seconds (default 0.5)
///   into the forward pass: a dead peer.
/// - `ATTNAX_FAULT=stall`: this rank SIGSTOPs itself `ATTNAX_FAULT_AFTER` seconds into the forward.
///
/// `ATTNAX_FAULT_RANK=N` picks the world rank (default 0).
enum Fault: String, CaseIterable {
  case weights, input, forward, sleep, die, stall

  /// The fault injected on this rank, if any.
  static func active(rank: Int) throws -> Fault? {
    guard let raw = ProcessInfo.processInfo.environment["ATTNAX_FAULT"], !raw.isEmpty else { return nil }
    guard let f = Fault(rawValue: raw) else {
      throw AttnaxError.input(
        name: "ATTNAX_FAULT", message: "unknown fault '\(raw)' (one of: \(allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    let target = Int(ProcessInfo.processInfo.environment["ATTNAX_FAULT_RANK"] ?? "0") ?? 0
    return target == rank ? f : nil
  }

  static func seconds(_ name: String, _ fallback: Double) -> Double {
    ProcessInfo.processInfo.environment[name].flatMap(Double.init) ?? fallback
  }

  /// `source`, or a source whose every load fails on this rank under `weights`.
  static func weights(_ source: WeightSource, rank: Int) throws -> WeightSource {
    try active(rank: rank) == .weights ? FailingSource() : source
  }

  /// Throws under `input`.
  static func input(_ path: String, rank: Int) throws {
    if try active(rank: rank) == .input {
      throw AttnaxError.file(path: path, message: "unreadable on this rank (injected by ATTNAX_FAULT=input)")
    }
  }

  /// Call as the forward pass starts: fails, sleeps, or arms the kill/stop timer.
  static func enteringForward(rank: Int) throws {
    switch try active(rank: rank) {
    case .forward?:
      throw AttnaxError.input(
        name: "x", message: "rejected on this rank as the forward pass starts (injected by ATTNAX_FAULT=forward)")
    case .sleep?:
      Thread.sleep(forTimeInterval: seconds("ATTNAX_FAULT_SECONDS", 3600))
    case .die?, .stall?:
      let signal = try active(rank: rank) == .die ? SIGKILL : SIGSTOP
      let after = seconds("ATTNAX_FAULT_AFTER", 0.5)
      Thread.detachNewThread {
        Thread.sleep(forTimeInterval: after)
        kill(getpid(), signal)
      }
    default: break
    }
  }

  private struct FailingSource: WeightSource {
    func load(_ name: String, shape: [Int], rows: Range<Int>?, columns: Range<Int>?) throws -> Tensor {
      throw AttnaxError.tensor(name: name, message: "this rank's slice is unreadable (injected by ATTNAX_FAULT=weights)")
    }
  }
}
