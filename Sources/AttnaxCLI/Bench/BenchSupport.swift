import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

/// Process memory as the kernel reports it.
enum Memory {
  /// Peak resident set size of this process so far (getrusage ru_maxrss, KiB on Linux), bytes.
  static var peakRSS: Int {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Int(u.ru_maxrss) * 1024
  }

  /// User + system CPU seconds of this process (all threads) so far.
  static var cpuSeconds: Double {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
  }

  /// Current resident set size (/proc/self/statm), bytes.
  static var currentRSS: Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }

  /// Resets the peak resident set size the kernel reports as `VmHWM` (Linux: `clear_refs` 5).
  static func resetPeak() {
    guard let f = fopen("/proc/self/clear_refs", "w") else { return }
    fputs("5", f)
    fclose(f)
  }

  /// Peak resident set size since the last ``resetPeak()`` (or since the start), bytes: `VmHWM`
  /// of /proc/self/status, or ``peakRSS`` where that is missing.
  static var peakSinceReset: Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
      let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { return peakRSS }
    return kib * 1024
  }

  /// This machine's physical memory, bytes (0 when unknown): what the memory checks of
  /// `generate` (KV cache), `embed` (a batch) and `bench` (a block) compare against, before
  /// allocating what could never fit.
  static var physicalBytes: Double { Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE))) }

  /// The 1-minute load average (/proc/loadavg): above the core count, other processes were
  /// competing for the CPUs while the benchmark ran.
  static var loadAverage: Double {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return -1 }
    return Double(text.split(separator: " ").first ?? "") ?? -1
  }

  static func text(_ bytes: Int) -> String {
    let b = Double(bytes)
    if Swift.abs(b) >= Double(1 << 30) { return String(format: "%.2f GiB", b / Double(1 << 30)) }
    return String(format: "%.1f MiB", b / Double(1 << 20))
  }
}

/// Just enough JSON for one flat object per line, keys in a fixed order.
enum BenchJSON: CustomStringConvertible {
  case string(String), int(Int), double(Double), bool(Bool), ints([Int]), doubles([Double])
  case object([(String, BenchJSON)])

  var description: String {
    switch self {
    case let .string(s): return Escaping.jsonQuoted(s)
    case let .int(i): return String(i)
    case let .double(d): return d.isFinite ? String(format: "%.6g", d) : "null"
    case let .bool(b): return b ? "true" : "false"
    case let .ints(a): return "[" + a.map(String.init).joined(separator: ", ") + "]"
    case let .doubles(a): return "[" + a.map { BenchJSON.double($0).description }.joined(separator: ", ") + "]"
    case let .object(fields): return "{" + fields.map { "\(BenchJSON.string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }
  }
}
