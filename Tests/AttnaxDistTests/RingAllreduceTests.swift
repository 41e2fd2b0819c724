import AttnaxDist
import AttnaxFormats
import Testing
import _TestSupport

/// Deterministic inputs every rank can regenerate for every other rank (SplitMix64 hashing
/// of rank and index), so the expected sum needs no communication.
private func value(rank: Int, index: Int, seed: UInt64) -> Float {
  SplitMix64.unit(SplitMix64.hash(seed &+ UInt64(rank) &* SplitMix64.increment &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9)) * 2 - 1
}

/// Small integers (exact in float whatever the order of the additions).
private func integer(rank: Int, index: Int) -> Float {
  Float((rank + 1) * (index % 101) - 50)
}

/// The counts that stress the chunking: empty, one element, around the rank count, large.
private func interestingCounts(_ size: Int) -> [Int] {
  Array(Set([0, 1, size - 1, size, size + 1, 2 * size + 1, 1_000, (1 << 20) + 3])).filter { $0 >= 0 }.sorted()
}

/// True when `values` holds the same bits on every rank of `comm`.
private func identicalOnEveryRank(_ values: [Float], _ comm: Communicator) throws -> Bool {
  guard comm.size > 1, !values.isEmpty else { return true }
  let all = try comm.allgather(values)
  let n = values.count
  return (0..<comm.size).allSatisfy { r in
    (0..<n).allSatisfy { all[r * n + $0].bitPattern == values[$0].bitPattern }
  }
}

extension DistSuite {
  @Suite("Ring allreduce")
  struct RingAllreduce {
    @Test("the ring sum of small integers is exact on every rank for counts 0, 1, around size, and large")
    func exactIntegerSums() throws {
      let comm = try makeWorld()
      for count in interestingCounts(comm.size) {
        var values = (0..<count).map { integer(rank: comm.rank, index: $0) }
        try values.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum, algorithm: .ring) }
        let expected = (0..<count).map { i in (0..<comm.size).reduce(Float(0)) { $0 + integer(rank: $1, index: i) } }
        #expect(values == expected, "count \(count)")
      }
      try comm.barrier()
    }

    @Test("the rank-ordered sum is ((x0 + x1) + x2) + ... bit for bit, whatever the count and the element's position")
    func rankOrderedSums() throws {
      let comm = try makeWorld()
      for count in interestingCounts(comm.size).filter({ $0 <= 100_000 }) {
        var values = (0..<count).map { value(rank: comm.rank, index: $0, seed: 11) }
        try values.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum, algorithm: .rankOrdered) }
        let expected = (0..<count).map { i in
          (1..<max(1, comm.size)).reduce(value(rank: 0, index: i, seed: 11)) { $0 + value(rank: $1, index: i, seed: 11) }
        }
        let differing = (0..<count).filter { values[$0].bitPattern != expected[$0].bitPattern }.count
        #expect(differing == 0, "count \(count): \(differing) elements differ from the rank-ordered sum")
      }
      // The same element sent alone and at the end of a longer buffer: the same bits (what a
      // server's batch invariance needs; the ring and libnbc may differ here on 3+ ranks).
      var alone = [value(rank: comm.rank, index: 5, seed: 13)]
      var inBatch = (0..<37).map { value(rank: comm.rank, index: $0 == 36 ? 5 : $0 + 100, seed: 13) }
      try alone.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum, algorithm: .rankOrdered) }
      try inBatch.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum, algorithm: .rankOrdered) }
      #expect(alone[0].bitPattern == inBatch[36].bitPattern)
      try comm.barrier()
    }

    @Test("the ring sum of random floats is bitwise identical on every rank and matches a double-precision sum")
    func identicalRandomSums() throws {
      let comm = try makeWorld()
      for count in interestingCounts(comm.size) {
        var values = (0..<count).map { value(rank: comm.rank, index: $0, seed: 7) }
        try values.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum, algorithm: .ring) }
        #expect(try identicalOnEveryRank(values, comm), "count \(count)")
        var worst = 0.0
        for i in 0..<count {
          let exact = (0..<comm.size).reduce(0.0) { $0 + Double(value(rank: $1, index: i, seed: 7)) }
          worst = max(worst, abs(Double(values[i]) - exact))
        }
        // Each partial sum rounds once: |error| <= (size - 1) ulp-scale of the largest partial.
        #expect(worst <= Double(comm.size) * 1.2e-7 * Double(comm.size), "count \(count): error \(worst)")
      }
      try comm.barrier()
    }

    @Test("the ring, MPI_Iallreduce and the automatic choice agree to rounding on a 1.5 MiB buffer")
    func algorithmsAgree() throws {
      let comm = try makeWorld()
      let count = 512 * 768
      let input = (0..<count).map { value(rank: comm.rank, index: $0, seed: 11) }
      var results: [[Float]] = []
      for algorithm in AllreduceAlgorithm.allCases {
        var values = input
        try values.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum, algorithm: algorithm) }
        #expect(try identicalOnEveryRank(values, comm), "\(algorithm)")
        results.append(values)
      }
      for other in results.dropFirst() {
        let worst = zip(results[0], other).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= Float(comm.size) * 2.4e-7 * Float(comm.size))
      }
      try comm.barrier()
    }

    @Test("the ring max and min pick the element-wise extremes, also with fewer elements than ranks")
    func ringMaxMin() throws {
      let comm = try makeWorld()
      for count in [1, comm.size + 1, 4_099] {
        var high = (0..<count).map { integer(rank: comm.rank, index: $0) }
        var low = high
        try high.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .max, algorithm: .ring) }
        try low.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .min, algorithm: .ring) }
        #expect(high == (0..<count).map { i in (0..<comm.size).map { integer(rank: $0, index: i) }.max()! })
        #expect(low == (0..<count).map { i in (0..<comm.size).map { integer(rank: $0, index: i) }.min()! })
      }
      try comm.barrier()
    }

    @Test("ring messages never match the caller's point-to-point messages with the same tags")
    func privateChannel() throws {
      let comm = try makeWorld()
      guard comm.size > 1 else { return }
      let right = (comm.rank + 1) % comm.size, left = (comm.rank + comm.size - 1) % comm.size
      // A user message with tag 0 (a tag the ring uses) is in flight across the allreduce.
      let mine: [Float] = [Float(comm.rank) + 0.5]
      var theirs: [Float] = [-1]
      try mine.withUnsafeBytes { out in
        try theirs.withUnsafeMutableBytes { into in
          let send = try comm.isend(out, to: right, tag: 0)
          var values = (0..<(4 * comm.size)).map { integer(rank: comm.rank, index: $0) }
          try values.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum, algorithm: .ring) }
          #expect(values == (0..<values.count).map { i in (0..<comm.size).reduce(Float(0)) { $0 + integer(rank: $1, index: i) } })
          try comm.wait(send)
          try comm.recv(into, from: left, tag: 0)
        }
      }
      #expect(theirs == [Float(left) + 0.5])
      try comm.barrier()
    }

    @Test("a ring allreduce that the other ranks never join times out naming the left neighbour")
    func ringTimeout() throws {
      let comm = try makeWorld()
      // A private copy of the world, so the abandoned allreduce cannot disturb later tests.
      let side = try comm.split(color: 0, key: comm.rank)
      var values = [Float](repeating: 1, count: 2 * side.size)
      // Everyone joins a first ring allreduce, so the ring's own channel exists.
      try values.withUnsafeMutableBufferPointer { try side.allreduce($0, op: .sum, algorithm: .ring) }
      #expect(values.allSatisfy { $0 == Float(side.size) })
      if side.rank == 0 && side.size > 1 {
        side.timeout = 0.3
        do {
          try values.withUnsafeMutableBufferPointer { try side.allreduce($0, op: .sum, algorithm: .ring) }
          Issue.record("expected a timeout")
        } catch let error as MPIError {
          guard case let .timeout(name, rank, peer, seconds) = error else { Issue.record("unexpected \(error)"); return }
          #expect(name == "allreduce (ring)")
          #expect(rank == 0)
          #expect(peer == side.size - 1)
          #expect(seconds == 0.3)
        }
      }
      try comm.barrier()
    }
  }
}
