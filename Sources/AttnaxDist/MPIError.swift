internal import CMPI

/// An error from the MPI runtime: the failing call, the rank, and what happened.
///
/// Every throwing API in AttnaxDist throws exactly this type (`throws(MPIError)`),
/// so callers can switch over the cases without casting.
public enum MPIError: Error, CustomStringConvertible, Sendable {
  /// An MPI call returned an error code.
  ///
  /// - `name`: the MPI function (e.g. `"MPI_Iallreduce"`).
  /// - `code`: the MPI error code it returned.
  /// - `rank`: the rank, in the communicator used, that saw the error.
  /// - `detail`: the text from `MPI_Error_string` (or an explanation for
  ///   errors detected by AttnaxDist itself, such as truncated messages).
  case call(String, code: Int32, rank: Int, detail: String)
  /// A blocking operation passed its deadline; `peer` is the rank waited for, if known.
  ///
  /// Point-to-point waits name the peer; collectives cannot tell which rank is
  /// late, so `peer` is `nil` for them.
  case timeout(String, rank: Int, peer: Int?, seconds: Double)
  /// Another rank reported a failure (e.g. bad input seen only there).
  ///
  /// Build this from the result of ``Communicator/agree(_:)`` to stop every
  /// rank with the same message.
  case remote(rank: Int, message: String)
  /// The grid or launch configuration is invalid, or an API was misused
  /// (a rank out of range, mismatched counts, MPI already finalized, ...).
  case usage(String)

  /// A one-line, human-readable explanation that names the call and the rank.
  public var description: String {
    switch self {
    case let .call(name, code, rank, detail): return "\(name) failed on rank \(rank) (code \(code)): \(detail)"
    case let .timeout(name, rank, peer, s):
      return "\(name) on rank \(rank) timed out after \(s) s" + (peer.map { " waiting for rank \($0)" } ?? "")
    case let .remote(rank, message): return "rank \(rank): \(message)"
    case let .usage(m): return m
    }
  }

  /// True for ``timeout(_:rank:peer:seconds:)``.
  public var isTimeout: Bool {
    if case .timeout = self { return true }
    return false
  }

  /// The peer a timed-out point-to-point operation was waiting for, if any.
  public var timeoutPeer: Int? {
    if case let .timeout(_, _, peer, _) = self { return peer }
    return nil
  }
}

extension MPIError {
  /// Builds ``call(_:code:rank:detail:)`` from an MPI return code, with the
  /// text of `MPI_Error_string`.
  ///
  /// Must be called with the runtime lock held and MPI initialised (the only
  /// caller is ``MPIRuntime/call(_:rank:_:)``).
  static func fromCode(_ code: Int32, call name: String, rank: Int) -> MPIError {
    .call(name, code: code, rank: rank, detail: errorString(code))
  }

  /// The text MPI associates with an error code (`MPI_Error_string`), or a
  /// generic message if even that fails.
  static func errorString(_ code: Int32) -> String {
    let capacity = Int(attnax_max_error_string()) + 1
    var buffer = [CChar](repeating: 0, count: capacity)
    var length: Int32 = 0
    let rc = buffer.withUnsafeMutableBufferPointer { MPI_Error_string(code, $0.baseAddress, &length) }
    guard rc == attnax_success(), length > 0 else { return "MPI error code \(code)" }
    let bytes = buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// A usage error for a count that does not fit MPI's 32-bit `int` counts.
  static func countTooLarge(_ name: String, _ count: Int) -> MPIError {
    .usage("\(name): count \(count) does not fit in a 32-bit MPI count")
  }

  /// A usage error for a rank outside `0..<size`.
  static func badRank(_ name: String, _ peer: Int, size: Int) -> MPIError {
    .usage("\(name): rank \(peer) is out of range 0..<\(size)")
  }
}

/// Converts a Swift count to MPI's `int`, refusing values that do not fit.
@inline(__always)
func mpiCount(_ count: Int, _ name: String) throws(MPIError) -> Int32 {
  guard count >= 0, count <= Int(Int32.max) else { throw MPIError.countTooLarge(name, count) }
  return Int32(count)
}
