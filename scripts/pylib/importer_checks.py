"""What every importer's test checks about its output folder and its errors (scripts/test_import_*.py).

    t = Checks()
    t.check(cond, "what")                      # prints ok / FAIL, counts failures
    t.refused(p, "needle", "label")            # exit 2, one `error:` line holding needle, no traceback
    t.output_rules(run, src, work, files)      # scripts/pylib/model_dir.py's rules, end to end
    in_process(main, argv), one_line(...)      # many inputs without a process each

run(src, out, *flags) runs the importer as a process and returns its CompletedProcess; files are the
names a successful import writes besides the marker. output_rules checks, in the folder `work`: a
usage error is one line (scripts/pylib/cli.py); a new folder and a re-import into an earlier output are written (with the marker); a folder with a
file the importer did not write, a look-alike without the marker, another tool's output, a regular
file, a symbolic link, a missing parent and a parent that is a file are refused with one line
before the input is read (a missing SRC still gets the output's error) and left byte for byte as
they were; --force replaces a folder but never a file; a read-only parent and a full disk (small
tmpfs mounts when this process may mount, as root here; otherwise the importer run with
scripts/pylib/fault_shim.py making the temp folder or the write fail) give one line and leave
nothing behind.

Standard library only.
"""
import contextlib
import io
import os
import shutil
import subprocess
import sys

import model_dir

HERE = os.path.dirname(os.path.abspath(__file__))


class Checks:
  def __init__(self):
    self.failures = []

  def check(self, cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
      self.failures.append(what)
    return cond

  def refused(self, p, needle, label):
    """p exited 2 with exactly one stderr line `error: ...` holding needle, nothing on stdout."""
    lines = p.stderr.strip().splitlines()
    line = lines[0] if len(lines) == 1 else repr(p.stderr.strip()[-300:])
    return self.check(
      p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
      and "internal error" not in lines[0] and not p.stdout.strip(), f"{label}: {line}")

  def summary(self, name):
    print(f"{name}: {'all passed' if not self.failures else f'{len(self.failures)} FAILED'}")
    return 0 if not self.failures else 1

  def output_rules(self, run, src, work, files):
    base = os.path.join(work, "out-rules")
    os.makedirs(base)
    out = os.path.join(base, "model")
    written = sorted(list(files) + [model_dir.MARKER])
    self.refused(run(src, out, "--bogus"), "unrecognized arguments: --bogus", "a usage error is one line too")
    self.check(not os.path.exists(out), "  nothing written")
    p = run(src, out)
    self.check(p.returncode == 0 and sorted(os.listdir(out)) == written,
               f"a new folder holds the model and the marker {model_dir.MARKER} ({p.stderr.strip()[-200:]})")
    p = run(src, out)
    self.check(p.returncode == 0 and sorted(os.listdir(out)) == written, "an earlier output is replaced without --force")

    def unchanged(path, label, *flags, source=src, needle=None):
      before = snapshot(path)
      p = run(source, path, *flags)
      self.refused(p, needle or path, label)
      self.check(snapshot(path) == before and leftovers(os.path.dirname(path)) == [],
                 f"  ({label}) left byte for byte as it was, no temp folder beside it")

    with open(os.path.join(out, "notes.txt"), "w") as f:
      f.write("mine\n")
    unchanged(out, "an earlier output with a file added is refused")
    p = run(src, out, "--force")
    self.check(p.returncode == 0 and sorted(os.listdir(out)) == written, "--force replaces it")

    foreign = os.path.join(base, "foreign")
    os.makedirs(os.path.join(foreign, "sub"))
    for name, text in (("notes.txt", "keep me\n"), ("sub/data.bin", "\0\1\2")):
      with open(os.path.join(foreign, name), "w") as f:
        f.write(text)
    unchanged(foreign, "a folder the importer did not write is refused")
    unchanged(foreign, "  checked before the input is read (a missing SRC, the output's error)",
              source=os.path.join(work, "no-such-input"))
    look = os.path.join(base, "lookalike")
    shutil.copytree(out, look)
    os.remove(os.path.join(look, model_dir.MARKER))
    unchanged(look, "a look-alike of an output without the marker is refused")
    other = os.path.join(base, "other-tool")
    shutil.copytree(out, other)
    with open(os.path.join(other, model_dir.MARKER), "w") as f:
      f.write('{"written_by": "someone_else.py", "files": %s}\n' % str(list(files)).replace("'", '"'))
    unchanged(other, "another tool's output is refused", needle="someone_else.py")
    p = run(src, foreign, "--force")
    self.check(p.returncode == 0 and sorted(os.listdir(foreign)) == written, "--force replaces a foreign folder")

    empty = os.path.join(base, "empty")
    os.makedirs(empty)
    p = run(src, empty)
    self.check(p.returncode == 0 and sorted(os.listdir(empty)) == written, "an empty folder is written")

    a_file = os.path.join(base, "a-file")
    with open(a_file, "wb") as f:
      f.write(b"precious bytes\n")
    unchanged(a_file, "a regular file is refused")
    unchanged(a_file, "a regular file is refused also with --force", "--force")
    link = os.path.join(base, "link")
    os.symlink(out, link)
    target = snapshot(out)
    unchanged(link, "a symbolic link to a folder is refused, also with --force", "--force")
    self.check(snapshot(out) == target, "  the link's target untouched")

    missing = os.path.join(base, "no", "such", "parent", "model")
    p = run(src, missing)
    self.refused(p, missing, "a missing parent folder is refused")
    self.check(not os.path.exists(os.path.join(base, "no")), "  nothing created")
    p = run(src, os.path.join(a_file, "model"))
    self.refused(p, a_file, "a path under a regular file is refused")

    self._unwritable(run, src, work)

  def _unwritable(self, run, src, work):
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k,ro", "tmpfs", mnt],
                             capture_output=True).returncode == 0
    try:
      if mounted:
        out = os.path.join(mnt, "model")
        p = run(os.path.join(work, "no-such-input"), out)
        self.refused(p, "Read-only file system", "a read-only parent (tmpfs) is refused before the input is read")
        subprocess.run(["mount", "-o", "remount,rw", mnt], check=True)
        with open(os.path.join(mnt, "keep.txt"), "w") as f:
          f.write("keep\n")
        p = run(src, out)  # 16 KiB cannot hold the model: ENOSPC while writing
        self.refused(p, "No space left on device", "a full disk (16 KiB tmpfs) is refused in one line")
        self.check(sorted(os.listdir(mnt)) == ["keep.txt"], "  nothing half-written: the staged temp folder removed")
    finally:
      if mounted:
        subprocess.run(["umount", mnt], check=True)
    how = "simulated" if not mounted else "also simulated"
    out = os.path.join(work, "sim-model")
    p = run(os.path.join(work, "no-such-input"), out, shim="readonly")
    self.refused(p, "Read-only file system", f"a read-only parent ({how}) is refused before the input is read")
    p = run(src, out, shim="enospc")
    self.refused(p, "No space left on device", f"a full disk ({how}: the write fails half-way) is refused")
    self.check(leftovers(work) == [] and not os.path.exists(out), "  nothing half-written")


def in_process(main, argv):
  """main(argv) of an importer in this process (fast, for many inputs): (status, stderr lines).
  An exception escaping main comes back as status "raised": it would have been a traceback."""
  err = io.StringIO()
  try:
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
      rc = main(argv)
  except BaseException as e:  # noqa: BLE001
    return "raised", [f"{type(e).__name__}: {e}"]
  return rc, err.getvalue().strip().splitlines()


def one_line(rc, lines, src, needle=""):
  """Exit 2 with exactly one line `error: SRC: ...` holding needle (and not the catch-all's)."""
  return (rc == 2 and len(lines) == 1 and lines[0].startswith(f"error: {src}: ") and needle in lines[0]
          and "internal error" not in lines[0])


def run_script(script, *args, shim=None):
  """The importer as a process; shim: run it under scripts/pylib/fault_shim.py with that fault."""
  cmd = [sys.executable] + ([os.path.join(HERE, "fault_shim.py"), shim] if shim else []) + [script, *args]
  return subprocess.run(cmd, capture_output=True, text=True)


def snapshot(path):
  """Everything at `path` (a file, a link or a tree): names, kinds, bytes, modes and mtimes."""
  def one(p):
    st = os.lstat(p)
    if os.path.islink(p):
      return ("link", os.readlink(p), st.st_mtime_ns)
    if os.path.isdir(p):
      return ("dir", st.st_mode, st.st_mtime_ns, {n: one(os.path.join(p, n)) for n in sorted(os.listdir(p))})
    with open(p, "rb") as f:
      return ("file", st.st_mode, st.st_mtime_ns, f.read())
  return one(path) if os.path.lexists(path) else None


def leftovers(folder):
  """Temp folders the staging left in `folder` (none is allowed)."""
  return sorted(n for n in os.listdir(folder) if n.startswith((".tmp-", ".old-")))
