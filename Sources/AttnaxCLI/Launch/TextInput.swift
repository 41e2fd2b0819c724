import AttnaxDist
import AttnaxFormats
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The text files of `generate --prompts` and `embed --input`: read once, by rank 0, and
/// broadcast, so every rank holds the same text.
///
/// Rank 0 alone reads because a pipe (`<(...)`, `/dev/stdin`) can be read only once, and mpirun
/// forwards stdin to rank 0 only. The file is read with `read(2)`, not as a mapped regular file,
/// so pipes and character devices work; lines end at `\n`, `\r\n` or `\r` (a Windows file
/// splits like a Unix one) and a leading UTF-8 byte-order mark is dropped. A path that cannot
/// be read is refused saying why (missing, a folder, permission denied, not UTF-8, too large).
enum TextInput {
  /// The largest text read (the prompts or texts of one run): 256 MiB.
  static let maxBytes = 256 << 20

  /// Rank 0 reads `path` (nil: nothing to read) and every rank agrees on the outcome (rank 0's
  /// failure is every rank's); the text is then broadcast from rank 0. Every rank must call it,
  /// with or without a path. The other ranks wait for rank 0's reading within the deadline
  /// (`--timeout`, applied before): a pipe's writer must finish within it.
  static func shared(_ world: Communicator, _ path: String?) throws -> String? {
    let read = Result { () throws -> String? in world.rank == 0 ? try path.map(text) : nil }
    try Launch.agree(world, read)
    guard world.size > 1 else { return try read.get() }
    // One byte says whether rank 0 had a path, the UTF-8 text follows.
    var blob: [UInt8] = []
    if world.rank == 0, let text = try read.get() { blob = [1] + Array(text.utf8) }
    try world.broadcast(&blob, root: 0)
    guard blob.first == 1 else { return nil }
    return String(decoding: blob.dropFirst(), as: UTF8.self)
  }

  /// The UTF-8 text of the file, pipe or device at `path` (a leading byte-order mark dropped).
  static func text(_ path: String) throws -> String {
    try decode(try bytes(path), path: path)
  }

  /// The bytes at `path`, read to the end (at most ``maxBytes``).
  ///
  /// `/dev/stdin`, `/dev/fd/N` and `/proc/self/fd/N` are read from this process's descriptor
  /// itself, not opened again by name: a named FIFO or a socket on stdin cannot be reopened
  /// (the open waits for a writer, or fails). A folder, a block device and a character device
  /// other than a terminal or /dev/null (/dev/zero would never end) are refused.
  static func bytes(_ path: String) throws -> [UInt8] {
    func refuse(_ message: String) -> AttnaxError { AttnaxError.file(path: path, message: message) }
    func errorText() -> String { String(cString: strerror(errno)) }
    let inherited = descriptor(path)
    let fd = inherited.map { dup($0) } ?? open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      guard errno == ENOENT || errno == EBADF else { throw refuse("cannot be read: \(errorText())") }
      // A <(...) pipe of the shell that started mpirun is not passed on to the ranks.
      let underMPI = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil
      throw refuse(
        inherited != nil && underMPI
          ? "does not exist in the ranks: mpirun does not pass a <(...) pipe on; pipe the text to mpirun's stdin and give /dev/stdin"
          : "does not exist")
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw refuse("cannot be read: \(errorText())") }
    switch st.st_mode & S_IFMT {
    case S_IFDIR: throw refuse("is a folder, not a text file")
    case S_IFBLK: throw refuse("is a block device, not a text file")
    case S_IFCHR where isatty(fd) == 0 && !isNullDevice(st.st_rdev):
      throw refuse("is a character device, not a text file (only a terminal or /dev/null is read)")
    default: break  // a regular file, a pipe, a socket, a terminal, /dev/null (empty)
    }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        throw refuse("cannot be read: \(errorText())")
      }
      if n == 0 { return out }
      out += chunk[0..<n]
      guard out.count <= maxBytes else { throw refuse("holds more than \(maxBytes >> 20) MiB of text") }
    }
  }

  /// Whether a character device is /dev/null (Linux: major 1, minor 3).
  static func isNullDevice(_ device: dev_t) -> Bool {
    let major = (device >> 8) & 0xfff, minor = (device & 0xff) | ((device >> 12) & 0xfff00)
    return major == 1 && minor == 3
  }

  /// The descriptor `path` names in this process, if it names one: 0 for `/dev/stdin`, N for
  /// `/dev/fd/N` and `/proc/self/fd/N`.
  static func descriptor(_ path: String) -> Int32? {
    if path == "/dev/stdin" { return 0 }
    for prefix in ["/dev/fd/", "/proc/self/fd/"] where path.hasPrefix(prefix) {
      return Int32(path.dropFirst(prefix.count))
    }
    return nil
  }

  /// `bytes` as UTF-8 text, a leading byte-order mark dropped; refused naming the first byte
  /// that is not UTF-8.
  static func decode(_ bytes: [UInt8], path: String) throws -> String {
    let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = body.makeIterator()
    var offset = bytes.count - body.count
    while true {
      switch parser.parseScalar(from: &iterator) {
      case let .valid(scalar): offset += scalar.count
      case .emptyInput: return String(decoding: body, as: UTF8.self)
      case .error:
        throw AttnaxError.file(
          path: path, message: "is not UTF-8 text: byte 0x\(String(bytes[offset], radix: 16)) at offset \(offset)")
      }
    }
  }

  /// The non-empty lines of `text`; a line ends at `\n`, `\r\n` or `\r`.
  ///
  /// Split on the UTF-8 bytes, not on `Character`s: Swift's `"\r\n"` is one grapheme cluster,
  /// so splitting a String on `"\n"` leaves a Windows file in one piece.
  static func lines(_ text: String) -> [String] {
    text.utf8.split(omittingEmptySubsequences: true) { $0 == 0x0A || $0 == 0x0D }.map { String(decoding: $0, as: UTF8.self) }
  }
}
