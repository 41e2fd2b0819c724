internal import CMPI

/// A handle for a pending non-blocking transfer (``Communicator/isend(_:to:tag:)``
/// or ``Communicator/irecv(_:from:tag:)``).
///
/// **Buffer lifetime:** the caller owns the buffer passed to `isend`/`irecv`
/// and must keep it allocated and unmodified (send) or untouched (receive)
/// until ``Communicator/wait(_:)``, ``Communicator/waitAll(_:)`` or
/// ``Communicator/test(_:)`` reports completion — or the wait throws a
/// timeout, which cancels the request. Dropping an unfinished request cancels
/// a receive and frees a send, but MPI may still use the buffer afterwards, so
/// always wait.
public final class Request: @unchecked Sendable {
  enum Kind { case send, recv }

  let kind: Kind
  /// The MPI function that started the transfer, for errors.
  let call: String
  /// The communicator the transfer belongs to.
  let comm: Communicator
  /// The MPI request, or nil once complete / for in-process transfers.
  var handle: MPI_Request?
  /// The in-process receive slot (pure-Swift communicators only).
  var slot: Mailbox.Slot?

  /// The destination (send) or source (receive) rank; nil for a receive from
  /// ``Communicator/anySource``.
  public let peer: Int?
  /// The message tag.
  public let tag: Int
  /// True once the transfer has completed (or was cancelled after a timeout).
  public internal(set) var isComplete = false
  /// True if the transfer was cancelled because its wait timed out.
  public internal(set) var isCancelled = false
  /// For a completed receive: the number of bytes received.
  public internal(set) var receivedBytes: Int?
  /// For a completed receive: the rank the message came from.
  public internal(set) var source: Int?

  init(kind: Kind, call: String, comm: Communicator, peer: Int?, tag: Int) {
    self.kind = kind
    self.call = call
    self.comm = comm
    self.peer = peer
    self.tag = tag
  }

  deinit {
    guard !isComplete else { return }
    if let slot { _ = comm.mailbox?.cancel(slot) }
    if handle != nil {
      var request = handle
      let isRecv = kind == .recv
      MPIRuntime.callIgnoringErrors {
        if isRecv { _ = MPI_Cancel(&request) }
        return MPI_Request_free(&request)
      }
    }
  }
}

extension Communicator {
  /// Starts sending `buffer` to `dest` with `tag` (`MPI_Isend` of bytes).
  ///
  /// On a pure-Swift (non-MPI) communicator the bytes are copied into an
  /// in-process mailbox and the request completes at once.
  /// Keep `buffer` alive and unmodified until the request completes.
  public func isend(_ buffer: UnsafeRawBufferPointer, to dest: Int, tag: Int) throws(MPIError) -> Request {
    try checkRank("isend", dest)
    let mpiTag = try checkTag("isend", tag)
    let count = try mpiCount(buffer.count, "MPI_Isend")
    let request = Request(kind: .send, call: "MPI_Isend", comm: self, peer: dest, tag: tag)
    guard let handle else {
      mailbox!.send(buffer, tag: tag)
      request.isComplete = true
      return request
    }
    try call("MPI_Isend") {
      MPI_Isend(buffer.baseAddress, count, attnax_byte(), Int32(dest), mpiTag, handle, &request.handle)
    }
    return request
  }

  /// Starts receiving into `buffer` from `source` (or ``anySource``) with `tag`
  /// (`MPI_Irecv` of bytes). The message may be shorter than the buffer
  /// (see ``Request/receivedBytes``); a longer one is an error.
  /// Keep `buffer` alive and untouched until the request completes.
  public func irecv(_ buffer: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) throws(MPIError) -> Request {
    if source != Communicator.anySource { try checkRank("irecv", source) }
    let mpiTag = try checkTag("irecv", tag)
    let count = try mpiCount(buffer.count, "MPI_Irecv")
    let peer: Int? = source == Communicator.anySource ? nil : source
    let request = Request(kind: .recv, call: "MPI_Irecv", comm: self, peer: peer, tag: tag)
    guard let handle else {
      request.slot = mailbox!.post(buffer, tag: tag)
      return request
    }
    let mpiSource = source == Communicator.anySource ? attnax_any_source() : Int32(source)
    try call("MPI_Irecv") {
      MPI_Irecv(buffer.baseAddress, count, attnax_byte(), mpiSource, mpiTag, handle, &request.handle)
    }
    return request
  }

  /// Starts sending `buffer`'s floats to `dest` with `tag` (``isend(_:to:tag:)-(UnsafeRawBufferPointer,_,_)`` of their bytes).
  /// Keep `buffer` alive and unmodified until the request completes.
  public func isend(_ buffer: UnsafeBufferPointer<Float>, to dest: Int, tag: Int) throws(MPIError) -> Request {
    try isend(UnsafeRawBufferPointer(buffer), to: dest, tag: tag)
  }

  /// Starts receiving floats into `buffer` from `source` with `tag` (the message may be shorter).
  /// Keep `buffer` alive and untouched until the request completes.
  public func irecv(_ buffer: UnsafeMutableBufferPointer<Float>, from source: Int, tag: Int) throws(MPIError) -> Request {
    try irecv(UnsafeMutableRawBufferPointer(buffer), from: source, tag: tag)
  }

  /// Tests a request once without blocking (`MPI_Test`).
  ///
  /// - Returns: true if it has completed (now or before).
  public func test(_ request: Request) throws(MPIError) -> Bool {
    if request.isComplete { return true }
    if let slot = request.slot {
      guard let outcome = request.comm.mailbox!.outcome(slot) else { return false }
      request.isComplete = true
      request.slot = nil
      switch outcome {
      case let .success(bytes):
        request.receivedBytes = bytes
        request.source = 0
      case let .failure(error):
        throw error
      }
      return true
    }
    var flag: Int32 = 0
    var status = MPI_Status()
    let owner = request.comm
    do {
      try owner.call("MPI_Test") { MPI_Test(&request.handle, &flag, &status) }
    } catch {
      // A request that completed with an error (e.g. MPI_ERR_TRUNCATE) is not
      // freed by MPI_Test; free it so nothing stays pending.
      let handle = request.handle
      if handle != nil, handle != attnax_request_null() {
        MPIRuntime.callIgnoringErrors { MPI_Request_free(&request.handle) }
      }
      request.handle = nil
      request.isComplete = true
      throw error
    }
    guard flag != 0 else { return false }
    request.isComplete = true
    request.handle = nil
    if request.kind == .recv { try owner.recordReceive(request, status: &status) }
    return true
  }

  /// Waits for a request to complete, bounded by ``timeout``.
  ///
  /// On expiry the request is cancelled (`MPI_Cancel`, then completed or
  /// `MPI_Request_free`d) so no unmatched receive is left posted, and
  /// ``MPIError/timeout(_:rank:peer:seconds:)`` names the peer. If the
  /// message turns out to have arrived at the last moment, the wait succeeds.
  public func wait(_ request: Request) throws(MPIError) {
    try waitAll([request], name: nil)
  }

  /// Waits for every request, bounded by one ``timeout`` for all of them.
  ///
  /// On expiry every unfinished request is cancelled and the error names the
  /// first one still missing. If a test fails with an MPI error, the other
  /// unfinished requests are cancelled before the error is rethrown.
  public func waitAll(_ requests: [Request]) throws(MPIError) {
    try waitAll(requests, name: nil)
  }

  /// Sends `send` to `dest` while receiving `recv` from `source`, with one tag
  /// (a deadline-bounded `MPI_Sendrecv` built from `MPI_Irecv` + `MPI_Isend`).
  ///
  /// Sending to oneself copies. The received message may be shorter than `recv`.
  public func sendrecv(
    send: UnsafeRawBufferPointer, to dest: Int, recv: UnsafeMutableRawBufferPointer, from source: Int, tag: Int
  ) throws(MPIError) {
    try checkRank("sendrecv", dest)
    if source != Communicator.anySource { try checkRank("sendrecv", source) }
    let incoming = try irecv(recv, from: source, tag: tag)
    let outgoing: Request
    do {
      outgoing = try isend(send, to: dest, tag: tag)
    } catch {
      _ = try? cancelAfterTimeout(incoming)
      throw error
    }
    try waitAll([incoming, outgoing], name: "MPI_Sendrecv")
  }

  /// Sends `buffer` to `dest` and waits for the send to complete.
  public func send(_ buffer: UnsafeRawBufferPointer, to dest: Int, tag: Int) throws(MPIError) {
    try wait(try isend(buffer, to: dest, tag: tag))
  }

  /// Receives into `buffer` from `source` (or ``anySource``) and waits.
  ///
  /// - Returns: the number of bytes received.
  @discardableResult
  public func recv(_ buffer: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) throws(MPIError) -> Int {
    let request = try irecv(buffer, from: source, tag: tag)
    try wait(request)
    return request.receivedBytes ?? 0
  }

  // MARK: - Internal

  /// Polls `requests` until all complete or `deadline` (default: ``timeout``
  /// from now) passes, waiting between polls by `backoff`; `name` overrides
  /// the call named in a timeout error.
  func waitAll(_ requests: [Request], name: String?, deadline: Deadline? = nil, backoff: Backoff = Backoff()) throws(MPIError) {
    let started = MonotonicClock.nanoseconds()
    defer { CommunicationMeter.record(since: started) }
    let deadline = deadline ?? Deadline(seconds: timeout)
    let done: Bool
    do {
      done = try deadline.poll(backoff) { () throws(MPIError) -> Bool in
        var all = true
        for request in requests where !request.isComplete {
          if try !test(request) { all = false }
        }
        return all
      }
    } catch {
      for request in requests where !request.isComplete { _ = try? cancelAfterTimeout(request) }
      throw error
    }
    if done { return }
    var missing: Request?
    for request in requests where !request.isComplete {
      if try !cancelAfterTimeout(request), missing == nil { missing = request }
    }
    guard let missing else { return }  // everything arrived at the last moment
    throw MPIError.timeout(name ?? missing.call, rank: missing.comm.rank, peer: missing.peer, seconds: deadline.seconds)
  }

  /// Cancels a request whose wait timed out.
  ///
  /// An unmatched receive is cancelled locally and completes at once; a send
  /// (which OpenMPI may be unable to cancel) gets a short grace period and is
  /// then released with `MPI_Request_free`.
  ///
  /// - Returns: true if the transfer had in fact completed (not cancelled).
  func cancelAfterTimeout(_ request: Request) throws(MPIError) -> Bool {
    if request.isComplete { return !request.isCancelled }
    if let slot = request.slot {
      let cancelled = request.comm.mailbox!.cancel(slot)
      if !cancelled { return try test(request) }
      request.slot = nil
      request.isComplete = true
      request.isCancelled = true
      return false
    }
    let owner = request.comm
    try owner.call("MPI_Cancel") { MPI_Cancel(&request.handle) }
    var flag: Int32 = 0
    var status = MPI_Status()
    let finished = try Deadline(seconds: 1).poll { () throws(MPIError) -> Bool in
      try owner.call("MPI_Test") { MPI_Test(&request.handle, &flag, &status) }
      return flag != 0
    }
    request.isComplete = true
    if finished {
      request.handle = nil
      var cancelled: Int32 = 0
      try owner.call("MPI_Test_cancelled") { MPI_Test_cancelled(&status, &cancelled) }
      if cancelled == 0 {
        if request.kind == .recv { try owner.recordReceive(request, status: &status) }
        return true
      }
    } else {
      try owner.call("MPI_Request_free") { MPI_Request_free(&request.handle) }
    }
    request.isCancelled = true
    return false
  }

  /// Records the byte count and source of a completed receive.
  func recordReceive(_ request: Request, status: inout MPI_Status) throws(MPIError) {
    var count: Int32 = 0
    try call("MPI_Get_count") { MPI_Get_count(&status, attnax_byte(), &count) }
    request.receivedBytes = Int(count)
    request.source = Int(attnax_status_source(&status))
  }

  /// Checks a tag and converts it to MPI's `int`.
  func checkTag(_ name: String, _ tag: Int) throws(MPIError) -> Int32 {
    guard tag >= 0, tag <= Int(Int32.max) else { throw MPIError.usage("\(name): tag \(tag) must be in 0...Int32.max") }
    return Int32(tag)
  }
}
