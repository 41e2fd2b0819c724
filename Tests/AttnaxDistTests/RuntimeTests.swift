import AttnaxDist
import Testing
import _TestSupport

#if canImport(Glibc)
import Glibc
#endif

extension DistSuite {
  @Suite("Runtime and deadlines")
  struct Runtime {
    @Test("world is MPI-backed exactly when launched by mpirun, and a plain process is one rank")
    func worldKind() throws {
      let comm = try makeWorld()
      #expect(comm.isMPI == launchedByMPIRun)
      if !launchedByMPIRun {
        #expect(comm.size == 1 && comm.rank == 0)
        #expect(Communicator.providedThreadLevel == nil)
      } else {
        #expect(Communicator.providedThreadLevel != nil)
        if let sizeText = getenv("OMPI_COMM_WORLD_SIZE") {
          #expect(comm.size == Int(String(cString: sizeText)))
        }
      }
      #expect(comm.rank >= 0 && comm.rank < comm.size)
      #expect(!Communicator.processorName.isEmpty)
      #expect(!Communicator.hostname.isEmpty)
      try comm.barrier()
    }

    @Test("the timeout defaults to ATTNAX_TIMEOUT or 60 seconds and is settable")
    func timeoutDefault() throws {
      let comm = try makeWorld()
      let expected = getenv("ATTNAX_TIMEOUT").flatMap { Double(String(cString: $0)) }.flatMap { $0 > 0 ? $0 : nil } ?? 60
      #expect(comm.timeout == expected)
      comm.timeout = 5
      #expect(comm.timeout == 5)
      #expect(try makeWorld().timeout == expected)
      try comm.barrier()
    }

    @Test("a receive from a peer that never sends times out naming the peer, and is cancelled")
    func receiveTimeout() throws {
      let comm = try makeWorld()
      let peer = comm.size > 1 ? 1 : 0
      let tag = 999
      if comm.rank == 0 {
        comm.timeout = 0.5
        var inbox = [UInt8](repeating: 0, count: 8)
        let start = Deadline.now
        try inbox.withUnsafeMutableBytes { into in
          let receive = try comm.irecv(into, from: peer, tag: tag)
          do {
            try comm.wait(receive)
            Issue.record("expected a timeout")
          } catch let error as MPIError {
            guard case let .timeout(name, rank, waitedFor, seconds) = error else {
              Issue.record("unexpected \(error)")
              return
            }
            #expect(name == "MPI_Irecv")
            #expect(rank == 0)
            #expect(waitedFor == peer)
            #expect(seconds == 0.5)
            #expect(error.description.contains("waiting for rank \(peer)"))
            #expect(receive.isCancelled)
          }
        }
        let elapsed = Deadline.now - start
        #expect(elapsed >= 0.45 && elapsed < 10)
        comm.timeout = 60
      }
      try comm.barrier()
      // The cancelled receive must not swallow a later message with the same tag.
      let payload: [UInt8] = [42, 43]
      var inbox = [UInt8](repeating: 0, count: 8)
      try payload.withUnsafeBytes { out in
        try inbox.withUnsafeMutableBytes { into in
          var requests: [Request] = []
          if comm.rank == 0 { requests.append(try comm.irecv(into, from: peer, tag: tag)) }
          if comm.rank == peer { requests.append(try comm.isend(out, to: 0, tag: tag)) }
          try comm.waitAll(requests)
        }
      }
      if comm.rank == 0 { #expect(Array(inbox.prefix(2)) == payload) }
      try comm.barrier()
    }

    @Test("a collective that a rank never joins times out instead of hanging")
    func collectiveTimeout() throws {
      let comm = try makeWorld()
      // A private copy of the world, so the abandoned barrier cannot disturb later tests.
      let side = try comm.split(color: 0, key: comm.rank)
      if comm.rank == 0 && comm.size > 1 {
        side.timeout = 0.3
        do {
          try side.barrier()
          Issue.record("expected a timeout")
        } catch {
          guard case let .timeout(name, rank, peer, _) = error else { Issue.record("unexpected \(error)"); return }
          #expect(name == "MPI_Ibarrier")
          #expect(rank == 0)
          #expect(peer == nil)
        }
      }
      try comm.barrier()
      // The other ranks now complete the barrier rank 0 abandoned (its request
      // finishes in the background), so no rank is left with a pending operation.
      if comm.rank != 0 { try side.barrier() }
      try comm.barrier()
    }
  }
}

/// Monotonic seconds, for measuring a timeout.
enum Deadline {
  static var now: Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }
}
