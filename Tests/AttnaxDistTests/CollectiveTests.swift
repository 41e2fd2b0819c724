import AttnaxDist
import Testing
import _TestSupport

extension DistSuite {
  @Suite("Collectives")
  struct Collectives {
    @Test("allreduceSum over a buffer matches the closed form on every rank")
    func allreduceSumBuffer() throws {
      let comm = try makeWorld()
      let n = comm.size
      let count = 1_000
      var values = (0..<count).map { Float(comm.rank + 1) * Float($0 + 1) }
      try values.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) }
      // sum over r of (r + 1) * (i + 1) = (i + 1) * n (n + 1) / 2
      let triangle = Float(n * (n + 1) / 2)
      #expect(values == (0..<count).map { Float($0 + 1) * triangle })
      try comm.barrier()
    }

    @Test("allreduceSum over an array handles a large (4 MiB) message")
    func allreduceSumLargeArray() throws {
      let comm = try makeWorld()
      let count = 1 << 20
      var values = [Float](repeating: Float(comm.rank), count: count)
      values[count - 1] = 1
      try comm.allreduceSum(&values)
      let rankSum = Float(comm.size * (comm.size - 1) / 2)
      #expect(values[0] == rankSum)
      #expect(values[count / 2] == rankSum)
      #expect(values[count - 1] == Float(comm.size))
      #expect(values.dropLast().allSatisfy { $0 == rankSum })
      try comm.barrier()
    }

    @Test("allreduce with max and min picks the element-wise extremes")
    func allreduceMaxMinBuffer() throws {
      let comm = try makeWorld()
      var high: [Float] = [Float(comm.rank), -Float(comm.rank), 7]
      var low = high
      try high.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .max) }
      try low.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .min) }
      #expect(high == [Float(comm.size - 1), 0, 7])
      #expect(low == [0, -Float(comm.size - 1), 7])
      try comm.barrier()
    }

    @Test("integer allreduce returns the maximum, minimum and sum on every rank")
    func allreduceIntegers() throws {
      let comm = try makeWorld()
      #expect(try comm.allreduceMax(comm.rank * 10) == (comm.size - 1) * 10)
      #expect(try comm.allreduceMin(comm.rank - 5) == -5)
      #expect(try comm.allreduceSum(comm.rank + 1) == comm.size * (comm.size + 1) / 2)
      #expect(try comm.allreduceMax(Int.max - comm.rank) == Int.max)
      try comm.barrier()
    }

    @Test("allgather returns every rank's block in rank order")
    func allgatherOrder() throws {
      let comm = try makeWorld()
      let block = 3
      let send = (0..<block).map { Float(comm.rank * 10 + $0) }
      var recv = [Float](repeating: -1, count: block * comm.size)
      try send.withUnsafeBufferPointer { s in
        try recv.withUnsafeMutableBufferPointer { r in try comm.allgather(s, into: r) }
      }
      let expected = (0..<comm.size).flatMap { r in (0..<block).map { Float(r * 10 + $0) } }
      #expect(recv == expected)
      #expect(try comm.allgather(send) == expected)
      try comm.barrier()
    }

    @Test("allgather refuses a receive buffer of the wrong size")
    func allgatherWrongSize() throws {
      let comm = try makeWorld()
      let send: [Float] = [1, 2]
      var recv = [Float](repeating: 0, count: 2 * comm.size + 1)
      do {
        try send.withUnsafeBufferPointer { s in
          try recv.withUnsafeMutableBufferPointer { r in try comm.allgather(s, into: r) }
        }
        Issue.record("expected a usage error")
      } catch let error as MPIError {
        guard case .usage = error else { Issue.record("unexpected \(error)"); return }
      }
      try comm.barrier()
    }

    @Test("allgatherv concatenates variable-length blocks, including an empty one, in rank order")
    func allgathervOrder() throws {
      let comm = try makeWorld()
      // Rank 1 (when present) contributes nothing.
      let counts = (0..<comm.size).map { $0 == 1 ? 0 : $0 + 2 }
      let send = (0..<counts[comm.rank]).map { Float(comm.rank * 100 + $0) }
      let all = try comm.allgatherv(send, counts: counts)
      let expected = (0..<comm.size).flatMap { r in (0..<counts[r]).map { Float(r * 100 + $0) } }
      #expect(all == expected)
      try comm.barrier()
    }

    @Test("gather collects rank-ordered blocks on the root only")
    func gatherToRoot() throws {
      let comm = try makeWorld()
      let root = comm.size - 1
      let counts = (0..<comm.size).map { $0 + 1 }
      let send = [Float](repeating: Float(comm.rank), count: comm.rank + 1)
      let result = try comm.gather(send, counts: counts, root: root)
      if comm.rank == root {
        #expect(result == (0..<comm.size).flatMap { [Float](repeating: Float($0), count: $0 + 1) })
      } else {
        #expect(result.isEmpty)
      }
      try comm.barrier()
    }

    @Test("broadcast of a byte array delivers the root's bytes and length to every rank")
    func broadcastVariableLength() throws {
      let comm = try makeWorld()
      let root = comm.size - 1
      let message = (0..<(1_000 + root)).map { UInt8(truncatingIfNeeded: $0 * 7 + root) }
      var bytes: [UInt8] = comm.rank == root ? message : [1, 2, 3]
      try comm.broadcast(&bytes, root: root)
      #expect(bytes == message)

      var empty: [UInt8] = comm.rank == 0 ? [] : [9, 9]
      try comm.broadcast(&empty, root: 0)
      #expect(empty.isEmpty)
      try comm.barrier()
    }

    @Test("broadcast of a raw buffer fills every rank with the root's 64 KiB")
    func broadcastRawBuffer() throws {
      let comm = try makeWorld()
      let count = 64 * 1024
      var buffer = [UInt8](repeating: 0, count: count)
      if comm.rank == 0 { for i in 0..<count { buffer[i] = UInt8(truncatingIfNeeded: i &* 31) } }
      try buffer.withUnsafeMutableBytes { try comm.broadcast($0, root: 0) }
      #expect(buffer == (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) })
      try comm.barrier()
    }

    @Test("broadcast refuses a root outside the communicator")
    func broadcastBadRoot() throws {
      let comm = try makeWorld()
      var bytes: [UInt8] = [1]
      do {
        try comm.broadcast(&bytes, root: comm.size)
        Issue.record("expected a usage error")
      } catch {
        guard case .usage = error else { Issue.record("unexpected \(error)"); return }
      }
      try comm.barrier()
    }
  }
}
