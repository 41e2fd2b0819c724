import AttnaxDist
import Testing
import _TestSupport

extension DistSuite {
  @Suite("Groups and agreement")
  struct Groups {
    @Test("split groups ranks of one colour and orders them by key")
    func splitByParity() throws {
      let comm = try makeWorld()
      comm.timeout = 30
      let color = comm.rank % 2
      // Reverse order inside each group.
      let group = try comm.split(color: color, key: -comm.rank)
      let members = (0..<comm.size).filter { $0 % 2 == color }.reversed().map { $0 }
      #expect(group.size == members.count)
      #expect(group.rank == members.firstIndex(of: comm.rank))
      #expect(group.timeout == 30)
      #expect(group.isMPI == comm.isMPI)
      #expect(try group.allreduceSum(comm.rank) == members.reduce(0, +))
      let order = try group.allgather([Float(comm.rank)])
      #expect(order == members.map(Float.init))
      try comm.barrier()
    }

    @Test("ProcessGrid puts consecutive ranks in a tp group for every tp that divides np")
    func gridShapes() throws {
      let comm = try makeWorld()
      let np = comm.size
      for tp in (1...np) where np % tp == 0 {
        let cp = np / tp
        let grid = try ProcessGrid.make(world: comm, tp: tp, cp: cp)
        #expect(grid.tpSize == tp && grid.cpSize == cp)
        #expect(grid.tpRank == comm.rank % tp && grid.cpRank == comm.rank / tp)
        #expect(grid.tp.size == tp && grid.tp.rank == grid.tpRank)
        #expect(grid.cp.size == cp && grid.cp.rank == grid.cpRank)
        #expect(grid.worldRank(tpRank: grid.tpRank, cpRank: grid.cpRank) == comm.rank)
        let tpMembers = try grid.tp.allgather([Float(comm.rank)])
        #expect(tpMembers == (0..<tp).map { Float(grid.cpRank * tp + $0) })
        let cpMembers = try grid.cp.allgather([Float(comm.rank)])
        #expect(cpMembers == (0..<cp).map { Float(grid.tpRank + $0 * tp) })
        // Sums inside a tp group only involve that group.
        var partial: [Float] = [1]
        try grid.tp.allreduceSum(&partial)
        #expect(partial == [Float(tp)])
      }
      try comm.barrier()
    }

    @Test("ProcessGrid.make refuses np that is not tp x cp with the same error on every rank")
    func gridRefusesBadShape() throws {
      let comm = try makeWorld()
      let np = comm.size
      for (tp, cp) in [(np + 1, 1), (np, 2), (0, np)] {
        do {
          _ = try ProcessGrid.make(world: comm, tp: tp, cp: cp)
          Issue.record("expected a usage error for tp \(tp) cp \(cp)")
        } catch {
          guard case let .usage(message) = error else { Issue.record("unexpected \(error)"); continue }
          if tp >= 1 {
            #expect(message == "np (\(np)) must equal tp (\(tp)) x cp (\(cp))")
          }
          // Every rank saw the same message.
          var bytes = Array(message.utf8)
          try comm.broadcast(&bytes, root: 0)
          #expect(bytes == Array(message.utf8))
        }
      }
      try comm.barrier()
    }

    @Test("agree returns nil on every rank when no rank failed")
    func agreeWithoutFailure() throws {
      let comm = try makeWorld()
      let result = try comm.agree(nil)
      #expect(result == nil)
      try comm.barrier()
    }

    @Test("agree with a failure on one rank only returns that rank and message on every rank")
    func agreeSingleFailure() throws {
      let comm = try makeWorld()
      let failing = comm.size - 1
      let local: String? = comm.rank == failing ? "bad input seen on rank \(failing) ✗" : nil
      let result = try comm.agree(local)
      #expect(result?.rank == failing)
      #expect(result?.message == "bad input seen on rank \(failing) ✗")
      // And the remote error built from it reads the same everywhere.
      if let result {
        let error = MPIError.remote(rank: result.rank, message: result.message)
        #expect(error.description == "rank \(failing): bad input seen on rank \(failing) ✗")
      }
      try comm.barrier()
    }

    @Test("agree picks the lowest failing rank when several ranks fail")
    func agreeLowestFailure() throws {
      let comm = try makeWorld()
      let lowestFailing = comm.size > 1 ? 1 : 0
      let local: String? = comm.rank >= lowestFailing ? "failure \(comm.rank)" : nil
      let result = try comm.agree(local)
      #expect(result?.rank == lowestFailing)
      #expect(result?.message == "failure \(lowestFailing)")
      try comm.barrier()
    }
  }
}
