import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A regular file opened read-only and memory-mapped: the one place the file formats
/// (safetensors, GGUF) open the bytes they read in place. Every failure names the path.
struct MappedFile {
  /// The open descriptor; the caller closes it (or keeps it for positioned reads).
  let fd: Int32
  /// The read-only private mapping, or nil for an empty file.
  let base: UnsafeMutableRawPointer?
  /// The file's length in bytes.
  let size: Int

  /// Opens and maps `path`; refuses anything but a regular file, and a file shorter than
  /// `minimumSize` with `tooShort(size)` as the message.
  init(path: String, minimumSize: Int = 0, tooShort: (Int) -> String = { "is only \($0) bytes long" }) throws {
    fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw AttnaxError.file(path: path, message: "cannot be opened: \(Self.errnoText())") }
    var st = stat()
    do {
      guard fstat(fd, &st) == 0 else {
        throw AttnaxError.file(path: path, message: "cannot be inspected: \(Self.errnoText())")
      }
      guard (st.st_mode & S_IFMT) == S_IFREG else { throw AttnaxError.file(path: path, message: "is not a regular file") }
      size = Int(st.st_size)
      guard size >= minimumSize else { throw AttnaxError.file(path: path, message: tooShort(size)) }
      if size > 0 {
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
          throw AttnaxError.file(path: path, message: "cannot be memory-mapped: \(Self.errnoText())")
        }
        base = m
      } else {
        base = nil
      }
    } catch {
      close(fd)
      throw error
    }
  }

  /// The text of the last C library error.
  static func errnoText() -> String { String(cString: strerror(errno)) }
}
