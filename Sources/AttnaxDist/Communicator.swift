// STUB: size-1 implementation so AttnaxBlocks compiles. The real MPI-backed
// implementation replaces this file (same public API).

/// An error from the MPI runtime: the failing call, the rank, and what happened.
public enum MPIError: Error, CustomStringConvertible, Sendable {
  /// An MPI call returned an error code.
  case call(String, code: Int32, rank: Int, detail: String)
  /// A blocking operation passed its deadline; `peer` is the rank waited for, if known.
  case timeout(String, rank: Int, peer: Int?, seconds: Double)
  /// Another rank reported a failure (e.g. bad input seen only there).
  case remote(rank: Int, message: String)
  /// The grid or launch configuration is invalid.
  case usage(String)

  public var description: String {
    switch self {
    case let .call(name, code, rank, detail): return "\(name) failed on rank \(rank) (code \(code)): \(detail)"
    case let .timeout(name, rank, peer, s):
      return "\(name) on rank \(rank) timed out after \(s) s" + (peer.map { " waiting for rank \($0)" } ?? "")
    case let .remote(rank, message): return "rank \(rank): \(message)"
    case let .usage(m): return m
    }
  }
}

/// A handle for a pending non-blocking transfer.
public final class Request: @unchecked Sendable {
  init() {}
}

/// A group of ranks. A communicator of size 1 makes every collective an identity.
public final class Communicator: @unchecked Sendable {
  public let rank: Int
  public let size: Int
  /// Deadline in seconds for every blocking operation.
  public var timeout: Double = 60

  init(rank: Int, size: Int) { self.rank = rank; self.size = size }

  /// The world communicator (size 1 when not launched by mpirun).
  public static func world() throws(MPIError) -> Communicator { Communicator(rank: 0, size: 1) }

  public func split(color: Int, key: Int) throws(MPIError) -> Communicator { Communicator(rank: 0, size: 1) }
  public func barrier() throws(MPIError) {}
  public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws(MPIError) {}
  public func allreduceSum(_ array: inout [Float]) throws(MPIError) {}
  public func allreduceMax(_ value: Int) throws(MPIError) -> Int { value }
  public func allreduceMin(_ value: Int) throws(MPIError) -> Int { value }
  public func broadcast(_ bytes: inout [UInt8], root: Int) throws(MPIError) {}
  public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws(MPIError) {}
  public func allgather(_ send: UnsafeBufferPointer<Float>, into recv: UnsafeMutableBufferPointer<Float>) throws(MPIError) {
    _ = recv.initialize(from: send)
  }
  public func allgatherv(_ send: [Float], counts: [Int]) throws(MPIError) -> [Float] { send }
  public func sendrecv(send: UnsafeRawBufferPointer, to dest: Int, recv: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) throws(MPIError) {
    recv.copyMemory(from: send)
  }
  public func isend(_ buffer: UnsafeRawBufferPointer, to dest: Int, tag: Int) throws(MPIError) -> Request { Request() }
  public func irecv(_ buffer: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) throws(MPIError) -> Request { Request() }
  public func wait(_ request: Request) throws(MPIError) {}
  public func waitAll(_ requests: [Request]) throws(MPIError) {}
  /// Agrees across all ranks whether any failed: returns the lowest failing rank's message, or nil.
  public func agree(_ localFailure: String?) throws(MPIError) -> (rank: Int, message: String)? {
    localFailure.map { (rank, $0) }
  }
  public func abort(code: Int32) -> Never { fatalError("abort \(code)") }
}
