"""Writing a model directory: never over what the tool did not write, and all or nothing.

    with staged_directory(out_dir, "import_gguf.py", force=args.force) as tmp:
        ...the work, writing its files into tmp...

On entry, before the work, OUT_DIR is checked (check_output) and a temp folder is made beside it,
which also proves the parent can be written in. What OUT_DIR may be:

- absent, or an empty folder: written;
- a folder holding an earlier output of the same tool: replaced. The tool's outputs carry a
  marker file, MARKER (`{"written_by": TOOL, "files": [...]}`), and the folder may hold nothing
  but the marker and files it lists. A tool that must not add a marker (make_golden.py: its case
  folders are committed fixtures) passes `files`, the exact set of names it writes, instead;
- any other folder (a file in it the tool did not write, another tool's output): refused, unless
  `force` (the command line's --force), which replaces any folder;
- anything that is not a folder (a regular file, a symbolic link, a device): always refused, also
  with `force`, which only ever replaces folders;
- in a parent that does not exist, is not a folder, or cannot be written in (permissions, a
  read-only file system): refused.

A refusal raises OutputError, one line naming OUT_DIR. When the block ends normally the marker is
written, the files are made world-readable, OUT_DIR is checked again, and the temp folder replaces
it in one rename (the old folder is removed afterwards). When the block raises, the temp folder is
removed and OUT_DIR is left as it was; an OSError while writing into the temp folder (ENOSPC on a
full disk, EDQUOT, EIO) becomes OutputError.

Standard library only.
"""
import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile

MARKER = ".attnax-output"


class OutputError(Exception):
  """OUT_DIR cannot be written, or may not be replaced; the message names it."""


def _read_marker(path):
  try:
    with open(path, encoding="utf-8") as f:
      marker = json.load(f)
  except (OSError, ValueError):
    return None
  if not isinstance(marker, dict) or not isinstance(marker.get("written_by"), str):
    return None
  files = marker.get("files")
  if not isinstance(files, list) or not all(isinstance(n, str) for n in files):
    return None
  return marker


def _foreign_entries(out_dir, tool, files):
  """Why OUT_DIR (an existing folder) is not an earlier output of `tool`, or None if it is one."""
  entries = sorted(os.listdir(out_dir))
  if not entries:
    return None
  not_files = [n for n in entries if not stat.S_ISREG(os.lstat(os.path.join(out_dir, n)).st_mode)]
  if files is not None:
    if set(entries) == set(files) and not not_files:
      return None
    return f"holds {_names(entries)}, not exactly the files {tool} writes ({_names(sorted(files))})"
  if MARKER not in entries:
    return f"is a folder that {tool} did not write (no {MARKER} in it; it holds {_names(entries)})"
  marker = _read_marker(os.path.join(out_dir, MARKER))
  if marker is None:
    return f"{MARKER} is not a marker this script understands"
  if marker["written_by"] != tool:
    return f"was written by {marker['written_by']}, not {tool}"
  foreign = [n for n in entries if n != MARKER and (n not in marker["files"] or n in not_files)]
  if foreign:
    return f"holds {_names(foreign)}, which {tool} did not write"
  return None


def _names(names, limit=4):
  shown = ", ".join(names[:limit])
  return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_target(out_dir, tool, force, files):
  """The checks on OUT_DIR itself (not its parent); raises OutputError."""
  try:
    st = os.lstat(out_dir)
  except FileNotFoundError:
    return
  except OSError as e:
    raise OutputError(f"{out_dir}: cannot be inspected ({e.strerror})") from None
  if stat.S_ISLNK(st.st_mode):
    raise OutputError(f"{out_dir}: is a symbolic link; not replaced (give the folder itself, or another path)")
  if not stat.S_ISDIR(st.st_mode):
    kind = "a file" if stat.S_ISREG(st.st_mode) else "not a folder"
    raise OutputError(f"{out_dir}: is {kind}; not replaced, also not with --force (remove it or choose another path)")
  try:
    why = _foreign_entries(out_dir, tool, files)
  except OSError as e:
    raise OutputError(f"{out_dir}: cannot be listed ({e.strerror})") from None
  if why is not None and not force:
    raise OutputError(f"{out_dir}: {why}; not replaced (pass --force to replace the folder)")


def _check_parent(out_dir):
  parent = os.path.dirname(out_dir)
  if not os.path.lexists(parent):
    raise OutputError(f"{out_dir}: its parent folder {parent} does not exist")
  if not os.path.isdir(parent):
    raise OutputError(f"{out_dir}: its parent {parent} is not a folder")
  return parent


def _make_temp(out_dir, parent):
  try:
    return tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(out_dir)}-")
  except OSError as e:
    raise OutputError(f"{out_dir}: cannot write in {parent} ({e.strerror})") from None


def check_output(out_dir, tool, force=False, files=None):
  """Raises OutputError unless staged_directory(out_dir, tool, force, files) could write OUT_DIR.

  For tools that do their work before they open the staged directory: call this first. It leaves
  nothing behind (the write probe is a temp folder, removed).
  """
  out_dir = os.path.abspath(out_dir)
  parent = _check_parent(out_dir)
  _check_target(out_dir, tool, force, files)
  os.rmdir(_make_temp(out_dir, parent))


def _is_write_error(e, tmp):
  if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
    return True
  name = e.filename if isinstance(e.filename, str) else None
  return name is None or os.path.abspath(name).startswith(tmp + os.sep)


def _commit(tmp, out_dir, parent, tool, force, files):
  names = sorted(os.listdir(tmp))
  if files is None:
    with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as f:
      json.dump({"written_by": tool, "files": names}, f)
      f.write("\n")
    names.append(MARKER)
  for name in names:
    os.chmod(os.path.join(tmp, name), 0o644)
  _check_target(out_dir, tool, force, files)  # again: it may have changed during the work
  old = None
  if os.path.lexists(out_dir):
    old = tempfile.mkdtemp(dir=parent, prefix=f".old-{os.path.basename(out_dir)}-")
    os.rename(out_dir, os.path.join(old, "dir"))
  try:
    os.rename(tmp, out_dir)
  except OSError:
    if old is not None:  # put the old folder back
      os.rename(os.path.join(old, "dir"), out_dir)
      os.rmdir(old)
    raise
  if old is not None:
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(out_dir, tool, force=False, files=None):
  """Yields a temp folder beside OUT_DIR that replaces OUT_DIR when the block ends normally.

  `tool` names the writer (recorded in the marker); `force` and `files` as in the module doc.
  """
  out_dir = os.path.abspath(out_dir)
  parent = _check_parent(out_dir)
  _check_target(out_dir, tool, force, files)
  tmp = _make_temp(out_dir, parent)
  try:
    os.chmod(tmp, 0o755)
    yield tmp
  except OSError as e:
    shutil.rmtree(tmp, ignore_errors=True)
    if _is_write_error(e, tmp):
      raise OutputError(f"{out_dir}: cannot be written ({e.strerror or e}); nothing was written") from None
    raise
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  try:
    _commit(tmp, out_dir, parent, tool, force, files)
  except OSError as e:
    shutil.rmtree(tmp, ignore_errors=True)
    raise OutputError(f"{out_dir}: cannot be written ({e.strerror or e}); left as it was") from None
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
