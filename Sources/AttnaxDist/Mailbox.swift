internal import CMPI

/// In-process message matching for a pure-Swift (non-MPI) communicator of
/// size 1, so `isend`/`irecv`/`sendrecv` to oneself behave as under MPI.
///
/// Sends are eager: the bytes are copied at `isend` time and the send request
/// completes at once (like MPI's eager protocol), so "send, wait, receive" on
/// one rank cannot deadlock. Receives match the oldest queued message with the
/// same tag; messages with one tag are delivered in order (MPI's
/// non-overtaking rule). A receive with nothing to match stays pending until a
/// send arrives or its wait times out and cancels it.
final class Mailbox: @unchecked Sendable {
  /// A posted receive.
  final class Slot {
    let buffer: UnsafeMutableRawBufferPointer
    let tag: Int
    /// Set once a message was delivered (or failed to fit).
    var outcome: Result<Int, MPIError>?

    init(buffer: UnsafeMutableRawBufferPointer, tag: Int) {
      self.buffer = buffer
      self.tag = tag
    }
  }

  private let lock = RecursiveLock()
  /// Sent messages not yet received, oldest first.
  private var queued: [(tag: Int, bytes: [UInt8])] = []
  /// Posted receives not yet matched, oldest first.
  private var pending: [Slot] = []

  /// Delivers a copy of `bytes` to the oldest pending receive with `tag`, or
  /// queues it.
  func send(_ bytes: UnsafeRawBufferPointer, tag: Int) {
    lock.withLock {
      if let index = pending.firstIndex(where: { $0.tag == tag }) {
        let slot = pending.remove(at: index)
        deliver(bytes, to: slot)
      } else {
        queued.append((tag, Array(bytes)))
      }
    }
  }

  /// Posts a receive; it completes at once if a matching message is queued.
  func post(_ buffer: UnsafeMutableRawBufferPointer, tag: Int) -> Slot {
    lock.withLock {
      let slot = Slot(buffer: buffer, tag: tag)
      if let index = queued.firstIndex(where: { $0.tag == tag }) {
        let message = queued.remove(at: index)
        message.bytes.withUnsafeBytes { deliver($0, to: slot) }
      } else {
        pending.append(slot)
      }
      return slot
    }
  }

  /// The slot's result once delivered: bytes received, or a truncation error.
  func outcome(_ slot: Slot) -> Result<Int, MPIError>? {
    lock.withLock { slot.outcome }
  }

  /// Withdraws a pending receive.
  ///
  /// - Returns: true if it was withdrawn, false if a message had already
  ///   been delivered to it.
  func cancel(_ slot: Slot) -> Bool {
    lock.withLock {
      guard slot.outcome == nil else { return false }
      pending.removeAll { $0 === slot }
      return true
    }
  }

  /// Copies a message into a slot, or records `MPI_ERR_TRUNCATE` if it does not fit.
  private func deliver(_ bytes: UnsafeRawBufferPointer, to slot: Slot) {
    guard bytes.count <= slot.buffer.count else {
      let detail = "message of \(bytes.count) bytes truncated into a \(slot.buffer.count)-byte buffer"
      slot.outcome = .failure(.call("MPI_Irecv", code: attnax_err_truncate(), rank: 0, detail: detail))
      return
    }
    if let destination = slot.buffer.baseAddress, let source = bytes.baseAddress, bytes.count > 0 {
      destination.copyMemory(from: source, byteCount: bytes.count)
    }
    slot.outcome = .success(bytes.count)
  }
}
