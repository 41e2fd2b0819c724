import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation
import Testing
import _TestSupport

@testable import AttnaxCLI

/// Every golden case on every (tp, cp) grid of the world, in-process (the CLI's `attnax golden`
/// adds the agreements and is checked by scripts/test at each layout). Meaningful only with
/// several ranks: scripts/test runs it under mpirun at np=2 and np=3.
@Suite("Distributed golden cases", .serialized, .enabled(if: TestWorld.size > 1, "needs mpirun -np 2 or more"))
struct DistributedGoldenTests {
  static var world: Communicator { TestWorld.communicator }

  @Test("Golden cases pass on every grid of the world")
  func goldenOnEveryGrid() throws {
    let n = Self.world.size
    #expect(Fixtures.goldenCases.count >= 25)
    for path in Fixtures.goldenCases {
      let golden = try GoldenCase(path)
      for tp in (1...n) where n % tp == 0 && tp <= golden.model.config.numHeads {
        let grid = try ProcessGrid.make(world: Self.world, tp: tp, cp: n / tp)
        let outcome = try golden.run(group: grid.tp, cp: grid.cp)
        #expect(outcome.passed, "\(golden.name) at tp \(tp) x cp \(n / tp): worst err/tol \(outcome.worstRatio)")
      }
    }
  }
}
