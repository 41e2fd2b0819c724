import ArgumentParser
import AttnaxFormats

/// The range of every number given on the command line, checked in the commands' `validate()`
/// (so before MPI starts and before any arithmetic on the value: no overflow trap, no giant
/// allocation). A value out of range is a usage error: one line naming the option and its
/// limits, exit status 2 on every rank (``Attnax/main()``).
enum OptionLimits {
  /// Throws ``LaunchError/option(_:_:)`` unless `value` (when given) lies in `range`.
  static func check(_ flag: String, _ value: Int?, _ range: ClosedRange<Int>) throws {
    guard let value, !range.contains(value) else { return }
    let limits =
      range.upperBound == Int.max
      ? "must be at least \(range.lowerBound)" : "must be between \(range.lowerBound) and \(range.upperBound)"
    throw LaunchError.option(flag, "\(limits), got \(value)")
  }

  /// Throws unless `value` (when given) is a finite number above 0, at least `least` and at
  /// most `max` (NaN and infinity are refused); `unit` names what it counts ("seconds").
  static func check(_ flag: String, _ value: Double?, positiveUpTo max: Double, atLeast least: Double = 0, unit: String) throws {
    guard let value else { return }
    guard value > 0 else { throw LaunchError.option(flag, "must be a positive number of \(unit), got \(value)") }
    guard value >= least else { throw LaunchError.option(flag, "must be at least \(least) \(unit), got \(value)") }
    guard value <= max else {
      throw LaunchError.option(flag, "must be at most \(Int(max)) \(unit), got \(value)")
    }
  }

  /// Runs the checks of a `validate()`: a refusal becomes ArgumentParser's `ValidationError`
  /// with the same one-line text, which ``Attnax/main()`` reports as a usage error.
  static func validating(_ checks: () throws -> Void) throws {
    do { try checks() } catch let e as LaunchError { throw ValidationError("\(e)") } catch let e as AttnaxError {
      throw ValidationError("\(e)")
    }
  }
}
