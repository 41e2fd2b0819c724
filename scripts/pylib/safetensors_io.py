"""The one safetensors reader/writer of the Python scripts (numpy only, no torch, no PyPI safetensors).

write(path, {name: ndarray}, metadata=None) writes F32/F64/I32/I64/U8/F16/BOOL tensors (and an optional
string map as __metadata__), header keys sorted by name and padded to
8 bytes, data in the order of the reference writer and of Swift's SafetensorsWriter (F32, then I32, then
U8, then the rest; by name within a dtype), atomically (a temp file renamed into place). The same tensors
give the same bytes from either writer. read(path) -> {name: ndarray} (copies, any supported dtype).
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


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        out[name] = np.frombuffer(data[lo:hi], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"]).copy()
    return out
