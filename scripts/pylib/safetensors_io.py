"""The one safetensors reader/writer of the Python scripts (numpy only, no torch, no PyPI safetensors).

write(path, {name: ndarray}, metadata=None) writes F32/F64/I32/I64/U8/F16/BOOL tensors (and an optional
string map as __metadata__), header keys sorted by name and padded to
8 bytes, data in the order of the reference writer and of Swift's SafetensorsWriter (F32, then I32, then
U8, then the rest; by name within a dtype), atomically (a temp file renamed into place). The same tensors
give the same bytes from either writer. read(path) -> {name: ndarray} (copies, any supported dtype;
parse(bytes) the same for bytes in memory);
a malformed file (truncated, a header that is not a JSON object of entries, an unknown dtype, offsets
outside the data or not matching dtype and shape) raises ValueError with one line saying what is wrong,
and one that cannot be read raises OSError.
"""
import json
import os
import struct
import tempfile

import numpy as np

_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8, "F16": np.float16,
           "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


_DATA_RANK = {"F32": 0, "I32": 1, "U8": 2}


def write(path, tensors, metadata=None):
    arrays = {name: np.ascontiguousarray(a) for name, a in tensors.items()}
    for name, a in arrays.items():
        if a.dtype not in _NAMES:
            raise ValueError(f"tensor {name!r}: dtype {a.dtype} is not supported")
    data_order = sorted(arrays, key=lambda n: (_DATA_RANK.get(_NAMES[arrays[n].dtype], 3), n.encode()))
    offsets, offset = {}, 0
    for name in data_order:
        offsets[name] = [offset, offset + arrays[name].nbytes]
        offset += arrays[name].nbytes
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}} if metadata else {}
    header.update({name: {"dtype": _NAMES[arrays[name].dtype], "shape": list(arrays[name].shape), "data_offsets": offsets[name]}
                   for name in sorted(arrays, key=lambda n: n.encode())})
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for name in data_order:
                f.write(arrays[name].tobytes())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _entry(name, info, data_len):
  """(dtype, shape, lo, hi) of one header entry, checked; ValueError names the tensor."""
  if not isinstance(info, dict):
    raise ValueError(f"tensor {name!r}: header entry is not an object")
  dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
  if not isinstance(dtype, str) or dtype not in _DTYPES:
    raise ValueError(f"tensor {name!r}: dtype {dtype!r} is not supported ({', '.join(_DTYPES)})")
  if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
    raise ValueError(f"tensor {name!r}: shape {shape!r} is not a list of non-negative integers")
  if (not isinstance(offsets, list) or len(offsets) != 2
      or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)):
    raise ValueError(f"tensor {name!r}: data_offsets {offsets!r} is not [begin, end]")
  lo, hi = offsets
  if not 0 <= lo <= hi <= data_len:
    raise ValueError(f"tensor {name!r}: data_offsets [{lo}, {hi}] lie outside the data section ({data_len} bytes)")
  need = int(np.prod(shape, dtype=object)) * np.dtype(_DTYPES[dtype]).itemsize
  if hi - lo != need:
    raise ValueError(f"tensor {name!r}: {dtype} shape {shape} needs {need} bytes, data_offsets span {hi - lo}")
  return dtype, shape, lo, hi


def read(path):
  with open(path, "rb") as f:
    return parse(f.read())


def parse(raw):
  """The tensors of a safetensors file's bytes (read's work, for bytes already in memory)."""
  if len(raw) < 8:
    raise ValueError(f"{len(raw)} bytes, too short for the 8-byte header length")
  n = struct.unpack("<Q", raw[:8])[0]
  if n > len(raw) - 8:
    raise ValueError(f"header length {n} runs past the end of the file ({len(raw)} bytes)")
  try:
    header = json.loads(raw[8:8 + n])
  except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
    raise ValueError(f"header is not valid JSON ({e})") from None
  if not isinstance(header, dict):
    raise ValueError("header is not a JSON object")
  data = raw[8 + n:]
  out = {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    dtype, shape, lo, hi = _entry(name, info, len(data))
    out[name] = np.frombuffer(data[lo:hi], dtype=_DTYPES[dtype]).reshape(shape).copy()
  return out
