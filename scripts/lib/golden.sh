# The golden case folders, one rule for every runner: sourced by scripts/test,
# scripts/test-multinode and scripts/fuzz (Sources/_TestSupport/Fixtures.swift's goldenCases is
# the same rule for the Swift tests). Functions only; nothing runs on source.
#
#   attnax_golden_extra ROOT   prints the extra set's folder: $ATTNAX_GOLDEN, default
#                              ROOT/../shared/golden (beside the checkout); it may not exist
#   attnax_golden_cases ROOT   prints the case folders, one a line: the repository's own
#                              (ROOT/Tests/Fixtures/golden/*/, written by scripts/make_golden.py),
#                              then the extra set's when that folder exists

attnax_golden_extra() {
  echo "${ATTNAX_GOLDEN:-$1/../shared/golden}"
}

attnax_golden_cases() {
  local extra d
  extra="$(attnax_golden_extra "$1")"
  for d in "$1"/Tests/Fixtures/golden/*/; do [[ -d "$d" ]] && echo "$d"; done
  if [[ -d "$extra" ]]; then
    for d in "$extra"/*/; do [[ -d "$d" ]] && echo "$d"; done
  fi
  return 0
}
