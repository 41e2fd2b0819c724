"""Where the cache lives and which imported model directories are in it, for every Python script.

    cache_root()     $ATTNAX_CACHE, else $XDG_CACHE_HOME/attnax, else ~/.cache/attnax (an empty
                     variable counts as unset), the same rule as scripts/lib/setup.sh's attnax_cache
    model_path(name) where model `name` of scripts/models is: the GGUF file or folder as shipped
                     (`smollm2`, `minilm`, `qwen2.5-0.5b`, `qwen2.5-1.5b`) or a reference import
                     (`smollm2-dir`, `minilm-dir`); the variable of _VARIABLES when set
                     (scripts/test exports them), else what scripts/models prints (it fetches on
                     first use); one lookup per name and process. Raises ModelUnavailable with
                     scripts/models' last line.

Standard library only (no numpy), so scripts run by the system python3 can use it.
"""
import functools
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_VARIABLES = {"smollm2": "ATTNAX_SMOLLM2_GGUF", "minilm": "ATTNAX_MINILM_DIR", "qwen2.5-0.5b": "ATTNAX_QWEN25_GGUF",
              "qwen2.5-1.5b": "ATTNAX_QWEN25_1_5B_GGUF", "smollm2-dir": "ATTNAX_SMOLLM2_DIR",
              "minilm-dir": "ATTNAX_MINILM_IMPORTED"}


class ModelUnavailable(Exception):
    """scripts/models could not fetch or import the model."""


def cache_root():
    return os.environ.get("ATTNAX_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "attnax")


@functools.lru_cache(maxsize=None)
def model_path(name):
    if name not in _VARIABLES:
        raise ValueError(f"unknown model {name!r} ({', '.join(_VARIABLES)})")
    given = os.environ.get(_VARIABLES[name])
    if given:
        return given
    out = subprocess.run([os.path.join(ROOT, "scripts", "models"), name], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        err = out.stderr.strip()
        raise ModelUnavailable(err.splitlines()[-1] if err else f"scripts/models {name} failed (exit {out.returncode})")
    return out.stdout.strip().splitlines()[-1]
