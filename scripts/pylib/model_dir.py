"""Writing a model directory atomically, the one way every importer does it.

    with staged_directory(out_dir) as tmp:
        ...write files into tmp...

Everything is written into a temp folder beside OUT_DIR; when the block ends normally the folder
(its files made world-readable) replaces OUT_DIR in one rename, and the old OUT_DIR is removed;
when it raises, the temp folder is removed and OUT_DIR is left as it was.
"""
import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def staged_directory(out_dir):
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(out_dir)}-")
    try:
        os.chmod(tmp, 0o755)
        yield tmp
        for name in os.listdir(tmp):
            os.chmod(os.path.join(tmp, name), 0o644)
        old = None
        if os.path.lexists(out_dir):
            old = tempfile.mkdtemp(dir=parent, prefix=f".old-{os.path.basename(out_dir)}-")
            os.rename(out_dir, os.path.join(old, "dir"))
        os.rename(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
