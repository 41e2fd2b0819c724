"""Runs a script with one injected output fault, for the importer tests (scripts/pylib/importer_checks.py).

    python fault_shim.py readonly|enospc SCRIPT ARGS...

readonly: making the staged temp folder fails with EROFS, as in a read-only parent folder;
enospc:   safetensors_io.write writes part of its file, then fails with ENOSPC, as on a full disk.

For machines where the test cannot mount a read-only or a tiny tmpfs (not root); where it can, the
tests use both. Standard library only (safetensors_io needs numpy, as the importers do).
"""
import errno
import os
import runpy
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402 - the importer's `import safetensors_io` then finds this module


def _fail(code, path=None):
  raise OSError(code, os.strerror(code), path)


def _mkdtemp(suffix=None, prefix=None, dir=None):
  _fail(errno.EROFS, dir)


def _write(path, tensors, metadata=None):
  with open(path, "wb") as f:
    f.write(b"\0" * 4096)
  _fail(errno.ENOSPC)


def main():
  fault, script = sys.argv[1], sys.argv[2]
  if fault == "readonly":
    tempfile.mkdtemp = _mkdtemp
  elif fault == "enospc":
    safetensors_io.write = _write
  else:
    sys.exit(f"fault_shim: unknown fault {fault!r} (readonly, enospc)")
  sys.argv = sys.argv[2:]
  runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
  main()
