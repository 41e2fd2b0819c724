import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import Foundation

/// `--tp`, `--cp` and `--timeout`, shared by every subcommand.
struct LayoutOptions: ParsableArguments {
  @Option(help: "Tensor-parallel ranks (heads and FFN columns split over them).") var tp: Int?
  @Option(help: "Context-parallel ranks (sequence split over a ring). np must equal tp x cp.") var cp: Int?
  @Option(help: "Seconds any rank waits for a peer before the job fails.") var timeout: Double?

  /// Builds the grid. Given one of --tp/--cp, the other is np divided by it; given neither,
  /// tp is the largest divisor of np that does not exceed `heads` and the rest go to cp.
  func grid(_ world: Communicator, heads: Int? = nil) throws -> ProcessGrid {
    if let timeout { world.timeout = timeout }
    let np = world.size
    let t: Int, c: Int
    switch (tp, cp) {
    case let (t0?, c0?): t = t0; c = c0
    case let (t0?, nil): t = t0; c = max(1, np / max(t0, 1))
    case let (nil, c0?): c = c0; t = max(1, np / max(c0, 1))
    case (nil, nil):
      t = (1...np).last { np % $0 == 0 && $0 <= (heads ?? np) } ?? 1
      c = np / t
    }
    let grid = try ProcessGrid.make(world: world, tp: t, cp: c)
    grid.tp.timeout = world.timeout
    grid.cp.timeout = world.timeout
    return grid
  }
}

enum LaunchError: Error, CustomStringConvertible {
  case input(Int, String)
  var description: String {
    switch self { case let .input(rank, m): return rank == 0 ? m : "\(m) (found on rank \(rank))" }
  }
}

/// The launcher's frame: MPI up, one body, errors reported once, the same exit status on
/// every rank (2 for bad input or layout, 1 for failed checks), MPI finalised.
enum Launch {
  static func main(_ body: (Communicator) throws -> Int32) throws -> Never {
    let status: Int32
    var world: Communicator?
    do {
      let w = try Communicator.world()
      world = w
      status = try body(w)
    } catch let e as MPIError {
      status = report(world, "\(e)", code: 2)
    } catch let e as AttnaxError {
      status = report(world, "\(e)", code: 2)
    } catch let e as LaunchError {
      status = report(world, "\(e)", code: 2)
    } catch {
      status = report(world, "\(error)", code: 2)
    }
    fflush(stdout)
    finalizeMPI()
    exit(status)
  }

  /// Errors are printed by rank 0 when every rank knows them (agreed), else by the rank that saw them.
  static func report(_ world: Communicator?, _ message: String, code: Int32) -> Int32 {
    if world?.rank ?? 0 == 0 || !(message.hasPrefix("rank ")) {
      FileHandle.standardError.write("error: \(message)\n".data(using: .utf8)!)
    }
    return code
  }

  /// Rank 0 prints.
  static func say(_ world: Communicator, _ line: String) {
    if world.rank == 0 { print(line); fflush(stdout) }
  }
}
