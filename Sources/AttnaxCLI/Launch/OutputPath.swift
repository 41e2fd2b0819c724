import AttnaxFormats
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An output file (`forward --output`, `generate --logits-out`) checked before the work starts,
/// so a path that cannot be written is refused at once rather than after the forward pass or
/// the whole generation.
///
/// The files are written atomically (``SafetensorsWriter/write(_:to:metadata:)``: a temporary
/// file in the same folder, renamed over the path), so the check is the writer's own first
/// step: a temporary file is created in the folder and removed at once. The messages are the
/// writer's. Besides, the path must not be a folder, nor an existing file that is not a regular
/// file (a rename would replace a device or a pipe such as /dev/null).
enum OutputPath {
  /// Throws ``AttnaxError/file(path:message:)`` unless `path` can be written atomically.
  static func check(_ path: String) throws {
    func refuse(_ message: String) -> AttnaxError { AttnaxError.file(path: path, message: message) }
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { String(path[..<$0]) } ?? "."
    let baseName = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard !baseName.isEmpty, baseName != ".", baseName != ".." else { throw refuse("is a folder path, not a file path") }
    var st = stat()
    if stat(path, &st) == 0 {
      switch st.st_mode & S_IFMT {
      case S_IFREG: break
      case S_IFDIR: throw refuse("cannot be replaced: Is a directory")
      default: throw refuse("exists and is not a regular file (a device, pipe or socket): it would be replaced")
      }
    }
    let probe = "\(directory.isEmpty ? "" : directory)/.\(baseName).probe.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw refuse(
        "cannot create a temporary file in '\(directory.isEmpty ? "/" : directory)': \(String(cString: strerror(errno)))")
    }
    close(fd)
    unlink(probe)
  }
}
