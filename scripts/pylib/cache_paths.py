"""Where the cache lives and which imported model directories are in it, for every Python script.

    cache_root()     $ATTNAX_CACHE, else $XDG_CACHE_HOME/attnax, else ~/.cache/attnax (an empty
                     variable counts as unset), the same rule as scripts/lib/setup.sh's attnax_cache
    model_dir(name)  the imported directory of `smollm2` or `minilm`: $ATTNAX_SMOLLM2_DIR /
                     $ATTNAX_MINILM_DIR when set (scripts/test exports them), else the directory
                     scripts/models prints (it fetches and imports on first use); one lookup per
                     name and process. Raises ModelUnavailable with scripts/models' last line.
    model_file(name) the file scripts/models NAME prints (a shipped GGUF: `smollm2-gguf`,
                     `qwen2.5-0.5b`, `qwen2.5-1.5b`), fetched on first use; same errors.

Standard library only (no numpy), so scripts run by the system python3 can use it.
"""
import functools
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_VARIABLES = {"smollm2": "ATTNAX_SMOLLM2_DIR", "minilm": "ATTNAX_MINILM_DIR"}


class ModelUnavailable(Exception):
    """scripts/models could not fetch or import the model."""


def cache_root():
    return os.environ.get("ATTNAX_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "attnax")


@functools.lru_cache(maxsize=None)
def model_dir(name):
    if name not in _VARIABLES:
        raise ValueError(f"unknown model {name!r} ({', '.join(_VARIABLES)})")
    given = os.environ.get(_VARIABLES[name])
    if given:
        return given
    return model_file(name)


@functools.lru_cache(maxsize=None)
def model_file(name):
    out = subprocess.run([os.path.join(ROOT, "scripts", "models"), name], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        err = out.stderr.strip()
        raise ModelUnavailable(err.splitlines()[-1] if err else f"scripts/models {name} failed (exit {out.returncode})")
    return out.stdout.strip().splitlines()[-1]
