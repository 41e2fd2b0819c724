// What every libFuzzer target shares; scripts/fuzz compiles it into each one.
//
// Under -O (how scripts/fuzz builds) `precondition` traps without its message; these print it
// (fatalError always does), so a finding in CI's log says which invariant broke.
import Foundation

/// ATTNAX_FUZZ_ALLOW_MULTILINE=1 tolerates multi-line error messages (the first bug the config
/// target found, since fixed by escaping in `AttnaxError.description`), to look past such a
/// regression for other findings.
let allowMultiline = getenv("ATTNAX_FUZZ_ALLOW_MULTILINE") != nil

/// Stops with `message` when `condition` is false: libFuzzer reports a crash and saves the input.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
  if !condition() { fatalError(message()) }
}

/// Requires an error message (what the launcher prints after `error: `) to be one line.
func requireOneLine(_ text: String) {
  require(allowMultiline || (!text.contains("\n") && !text.contains("\r")), "multi-line error: \(text)")
}
