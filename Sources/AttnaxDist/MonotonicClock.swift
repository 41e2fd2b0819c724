#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one clock of the package: `CLOCK_MONOTONIC`, never adjusted, for deadlines, profiles,
/// benchmarks and tokens per second.
public enum MonotonicClock {
  /// Nanoseconds since an arbitrary fixed point.
  public static func nanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
  }

  /// Seconds since an arbitrary fixed point.
  public static func seconds() -> Double { Double(nanoseconds()) * 1e-9 }

  /// Seconds `body` took, and its result.
  public static func measure<R>(_ body: () throws -> R) rethrows -> (seconds: Double, result: R) {
    let t0 = seconds()
    let r = try body()
    return (seconds() - t0, r)
  }
}
