import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import Foundation

/// `--tp`, `--cp` and `--timeout`, shared by every subcommand.
struct LayoutOptions: ParsableArguments {
  @Option(help: "Tensor-parallel ranks (heads and FFN columns split over them).") var tp: Int?
  @Option(help: "Context-parallel ranks (sequence split over a ring). np must equal tp x cp.") var cp: Int?
  @Option(help: "Seconds any rank waits for a peer before the job fails.") var timeout: Double?

  /// The grid's (tp, cp) for `np` ranks, checked without communicating. Given one of --tp/--cp,
  /// the other is np divided by it; given neither, tp is the largest divisor of np that does not
  /// exceed `heads` and the rest go to cp. Throws a layout error naming the option or the rule.
  func shape(np: Int, heads: Int? = nil) throws -> (tp: Int, cp: Int) {
    if let timeout, !(timeout > 0) {
      throw LaunchError.option("--timeout", "must be a positive number of seconds, got \(timeout)")
    }
    if let tp, tp < 1 { throw LaunchError.option("--tp", "must be at least 1, got \(tp)") }
    if let cp, cp < 1 { throw LaunchError.option("--cp", "must be at least 1, got \(cp)") }
    let t: Int, c: Int
    switch (tp, cp) {
    case let (t0?, c0?): t = t0; c = c0
    case let (t0?, nil): t = t0; c = max(1, np / t0)
    case let (nil, c0?): c = c0; t = max(1, np / c0)
    case (nil, nil):
      t = (1...np).last { np % $0 == 0 && $0 <= (heads ?? np) } ?? 1
      c = np / t
    }
    let (product, overflow) = t.multipliedReportingOverflow(by: c)
    guard !overflow, product == np else {
      throw AttnaxError.layout(message: "np (\(np)) must equal tp (\(t)) x cp (\(c))")
    }
    if let heads, t > heads {
      throw AttnaxError.layout(message: "tp (\(t)) is larger than num_heads (\(heads)); every rank needs at least one query head")
    }
    return (t, c)
  }

  /// Agrees on the shape (a bad one is reported once, identically on every rank), then builds
  /// the grid.
  func grid(_ world: Communicator, heads: Int? = nil) throws -> ProcessGrid {
    let s = Result { try shape(np: world.size, heads: heads) }
    try Launch.agree(world, s)
    return try makeGrid(world, try s.get())
  }

  /// Applies --timeout and splits the world into the (already agreed) tp x cp grid.
  func makeGrid(_ world: Communicator, _ shape: (tp: Int, cp: Int)) throws -> ProcessGrid {
    if let timeout { world.timeout = timeout }
    let grid = try ProcessGrid.make(world: world, tp: shape.tp, cp: shape.cp)
    grid.tp.timeout = world.timeout
    grid.cp.timeout = world.timeout
    return grid
  }
}

enum LaunchError: Error, CustomStringConvertible {
  /// Agreed by every rank (the lowest rank that saw it, and its message): printed once, by rank 0.
  case input(Int, String)
  /// A command-line option with a bad value.
  case option(String, String)
  var description: String {
    switch self {
    case let .input(rank, m): return rank == 0 ? m : "\(m) (found on rank \(rank))"
    case let .option(name, m): return "option '\(name)': \(m)"
    }
  }
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
      status = report(world, "\(e)")
    } catch {
      fail(world, error)
    }
    fflush(stdout)
    finalizeMPI()
    exit(status)
  }

  /// See ``Kernels/keepFreedMemory()``; `ATTNAX_MALLOC=default` keeps glibc's defaults.
  static func keepFreedMemory() {
    if ProcessInfo.processInfo.environment["ATTNAX_MALLOC"] != "default" { Kernels.keepFreedMemory() }
  }

  /// An agreed error: rank 0 prints it; status 2.
  static func report(_ world: Communicator?, _ message: String) -> Int32 {
    if world?.rank ?? 0 == 0 {
      FileHandle.standardError.write("error: \(oneLine(message))\n".data(using: .utf8)!)
    }
    return 2
  }

  /// The message on one line whatever it quotes (a config key holding a newline, say): control
  /// characters are escaped as `\u{a}`.
  static func oneLine(_ message: String) -> String {
    var out = ""
    for u in message.unicodeScalars {
      if u.value < 0x20 || u.value == 0x7F { out += "\\u{\(String(u.value, radix: 16))}" } else { out.unicodeScalars.append(u) }
    }
    return out
  }

  /// An error seen by this rank only: print it here (naming the rank) and stop every rank.
  static func fail(_ world: Communicator?, _ error: Error) -> Never {
    let rank = world?.rank ?? 0, size = world?.size ?? 1
    var text = oneLine("\(error)")
    if size > 1 && !text.contains("rank \(rank)") { text += " (on rank \(rank))" }
    FileHandle.standardError.write("error: \(text)\n".data(using: .utf8)!)
    fflush(stdout)
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

  /// Rank 0 prints.
  static func say(_ world: Communicator, _ line: String) {
    if world.rank == 0 { print(line); fflush(stdout) }
  }
}
