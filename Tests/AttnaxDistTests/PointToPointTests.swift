import AttnaxDist
import Testing
import _TestSupport

extension DistSuite {
  @Suite("Point to point")
  struct PointToPoint {
    @Test("sendrecv around a ring passes each rank's block to its right neighbour")
    func sendrecvRing() throws {
      let comm = try makeWorld()
      let right = (comm.rank + 1) % comm.size
      let left = (comm.rank + comm.size - 1) % comm.size
      // Large enough (400 KB) to use MPI's rendezvous protocol, not just eager sends.
      let count = 100_000
      let send = (0..<count).map { Float(comm.rank * 1_000_000 + $0) }
      var recv = [Float](repeating: -1, count: count)
      try send.withUnsafeBytes { s in
        try recv.withUnsafeMutableBytes { r in try comm.sendrecv(send: s, to: right, recv: r, from: left, tag: 7) }
      }
      #expect(recv == (0..<count).map { Float(left * 1_000_000 + $0) })
      try comm.barrier()
    }

    @Test("isend and irecv around a ring with double buffering circulate every rank's block")
    func doubleBufferedRing() throws {
      let comm = try makeWorld()
      let n = comm.size
      let right = (comm.rank + 1) % n
      let left = (comm.rank + n - 1) % n
      let block = 4_096
      var buffers = [
        [Float](repeating: Float(comm.rank), count: block),
        [Float](repeating: -1, count: block),
      ]
      var seen: [Int] = []
      // 2n steps: every block goes round the ring twice.
      for step in 0..<(2 * n) {
        let current = step % 2
        let next = 1 - current
        seen.append(Int(buffers[current][0]))
        #expect(buffers[current].allSatisfy { $0 == buffers[current][0] })
        try buffers[current].withUnsafeBytes { out in
          try buffers[next].withUnsafeMutableBytes { into in
            let receive = try comm.irecv(into, from: left, tag: step)
            let send = try comm.isend(out, to: right, tag: step)
            try comm.waitAll([receive, send])
            #expect(receive.isComplete && send.isComplete)
            #expect(receive.receivedBytes == block * MemoryLayout<Float>.stride)
            #expect(receive.source == left)
          }
        }
      }
      // At step s a rank holds the block that started s ranks to its left.
      #expect(seen == (0..<(2 * n)).map { (comm.rank - $0 % n + n) % n })
      try comm.barrier()
    }

    @Test("a rank can send to itself and receive the message, in either posting order")
    func selfMessages() throws {
      let comm = try makeWorld()
      let payload: [UInt8] = [1, 2, 3, 4, 5]
      var inbox = [UInt8](repeating: 0, count: 16)
      // Send first, then receive.
      try payload.withUnsafeBytes { out in
        try inbox.withUnsafeMutableBytes { into in
          let send = try comm.isend(out, to: comm.rank, tag: 3)
          let received = try comm.recv(into, from: comm.rank, tag: 3)
          try comm.wait(send)
          #expect(received == payload.count)
        }
      }
      #expect(Array(inbox.prefix(payload.count)) == payload)
      // Receive first (from any source), then send.
      inbox = [UInt8](repeating: 0, count: 16)
      try payload.withUnsafeBytes { out in
        try inbox.withUnsafeMutableBytes { into in
          let receive = try comm.irecv(into, from: Communicator.anySource, tag: 4)
          try comm.send(out, to: comm.rank, tag: 4)
          try comm.wait(receive)
          #expect(receive.source == comm.rank)
          #expect(receive.peer == nil)
        }
      }
      #expect(Array(inbox.prefix(payload.count)) == payload)
      try comm.barrier()
    }

    @Test("a message longer than the receive buffer fails with an MPI error naming the call and rank")
    func truncatedMessage() throws {
      let comm = try makeWorld()
      let payload = [UInt8](repeating: 1, count: 32)
      var small = [UInt8](repeating: 0, count: 8)
      try payload.withUnsafeBytes { out in
        try small.withUnsafeMutableBytes { into in
          let send = try comm.isend(out, to: comm.rank, tag: 5)
          let receive = try comm.irecv(into, from: comm.rank, tag: 5)
          do {
            try comm.wait(receive)
            Issue.record("expected a truncation error")
          } catch let error as MPIError {
            guard case let .call(name, _, rank, detail) = error else { Issue.record("unexpected \(error)"); return }
            #expect(name.hasPrefix("MPI_"))
            #expect(rank == comm.rank)
            #expect(!detail.isEmpty)
            #expect(error.description.contains("rank \(comm.rank)"))
          }
          try comm.wait(send)
        }
      }
      try comm.barrier()
    }

    @Test("point-to-point calls refuse ranks outside the communicator and negative tags")
    func badArguments() throws {
      let comm = try makeWorld()
      let payload: [UInt8] = [1]
      try payload.withUnsafeBytes { out in
        for (dest, tag) in [(comm.size, 0), (-2, 0), (0, -1)] {
          do {
            _ = try comm.isend(out, to: dest, tag: tag)
            Issue.record("expected a usage error for dest \(dest) tag \(tag)")
          } catch let error as MPIError {
            guard case .usage = error else { Issue.record("unexpected \(error)"); continue }
          }
        }
      }
      try comm.barrier()
    }
  }
}
