import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

enum LaunchError: Error, CustomStringConvertible {
  /// Agreed by every rank (the lowest rank that saw it, and its message): printed once, by rank 0.
  case input(Int, String)
  /// A command-line option with a bad value.
  case option(String, String)
  /// A check failed (agreed by every rank): exit status 1, not 2.
  case failed(String)
  var description: String {
    switch self {
    case let .input(rank, m): return rank == 0 ? m : "\(m) (found on rank \(rank))"
    case let .option(name, m): return "option '\(name)': \(m)"
    case let .failed(m): return m
    }
  }
  /// The exit status every rank returns: 1 for a failed check, 2 for bad input.
  var status: Int32 { if case .failed = self { return 1 } else { return 2 } }
}

/// The launcher's frame: MPI up, one body, errors reported once, the same exit status on
/// every rank (2 for bad input or layout, 1 for failed checks), MPI finalised.
///
/// Errors the ranks agreed on (``LaunchError/input(_:_:)``, from ``agree(_:_:)``) are printed by
/// rank 0 only and every rank exits 2 normally. Any other error escaping the body was seen by
/// this rank alone (a deadline passed, an MPI call failed): the rank prints it, naming itself,
/// and aborts the job so no peer is left waiting for it.
enum Launch {
  static func main(_ body: (Communicator) throws -> Int32) throws -> Never {
    BLASCore.correctFallback()
    keepFreedMemory()
    let status: Int32
    var world: Communicator?
    do {
      let w = try Communicator.world()
      world = w
      status = try body(w)
    } catch let e as LaunchError {
      status = report(world, "\(e)", status: e.status)
    } catch {
      fail(world, error)
    }
    fflush(nil)
    finalizeMPI()
    exit(status)
  }

  /// See ``Kernels/keepFreedMemory()``; `ATTNAX_MALLOC=default` keeps glibc's defaults.
  static func keepFreedMemory() {
    if ProcessInfo.processInfo.environment["ATTNAX_MALLOC"] != "default" { Kernels.keepFreedMemory() }
  }

  /// An agreed error: rank 0 prints it; returns `status` (2: bad input).
  static func report(_ world: Communicator?, _ message: String, status: Int32 = 2) -> Int32 {
    if world?.rank ?? 0 == 0 {
      FileHandle.standardError.write("error: \(Escaping.oneLine(message))\n".data(using: .utf8)!)
    }
    return status
  }

  /// An error seen by this rank only: print it here (naming the rank) and stop every rank.
  static func fail(_ world: Communicator?, _ error: Error) -> Never {
    let rank = world?.rank ?? 0, size = world?.size ?? 1
    var text = Escaping.oneLine("\(error)")
    if size > 1 && !text.contains("rank \(rank)") { text += " (on rank \(rank))" }
    FileHandle.standardError.write("error: \(text)\n".data(using: .utf8)!)
    fflush(nil)
    if let world, size > 1 { world.abort(code: 2) }
    finalizeMPI()
    exit(2)
  }

  /// Agrees on a step's outcome; throws the lowest failing rank's error on every rank.
  static func agree<T>(_ world: Communicator, _ outcome: Result<T, Error>) throws {
    if let bad = try world.agree(outcome.failureText) { throw LaunchError.input(bad.rank, bad.message) }
  }

  /// Agrees on the outcome of a step that communicates inside (a forward pass). A rank whose
  /// step failed there may have left its peers inside a collective it never joined, where they
  /// would wait for the full deadline: it waits for them at most `grace` seconds and, if they do
  /// not all come, prints its error and aborts the job. An MPI error (a deadline passed) means the
  /// communicators are unusable: that rank reports and aborts at once.
  static func agreeAfterCollectives<T>(_ world: Communicator, _ outcome: Result<T, Error>, grace: Double = 2) throws {
    if case let .failure(e) = outcome, world.size > 1 {
      if e is MPIError { fail(world, e) }
      let saved = world.timeout
      world.timeout = min(saved, grace)
      let agreed: (rank: Int, message: String)?
      do { agreed = try world.agree("\(e)") } catch { fail(world, e) }
      world.timeout = saved
      if let agreed { throw LaunchError.input(agreed.rank, agreed.message) }
    }
    try agree(world, outcome)
  }

  /// Rank 0 prints `line` on stderr (progress and figures that must not mix with the output).
  static func note(_ world: Communicator, _ line: String) {
    if world.rank == 0 { FileHandle.standardError.write(Data((line + "\n").utf8)) }
  }

  /// Rank 0 prints.
  static func say(_ world: Communicator, _ line: String) {
    if world.rank == 0 { print(line); fflush(nil) }
  }
}

extension Communicator {
  /// `value` from every rank, in rank order (one integer allreduce per rank; np is small).
  func valuesByRank(_ value: Int) throws -> [Int] {
    try (0..<size).map { r in try allreduceSum(rank == r ? value : 0) }
  }
}

extension Result {
  /// The error's one-line description, or nil on success (what ranks agree on).
  var failureText: String? { if case let .failure(e) = self { return "\(e)" } else { return nil } }
}
