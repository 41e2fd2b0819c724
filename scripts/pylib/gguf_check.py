"""A GGUF file's structure, checked with bounds before gguf's reader sees it.

    reader = gguf_check.open_reader(path)     # a gguf.GGUFReader, or GGUFError
    for name, qtype, n_bytes in gguf_check.check(path): ...   # each tensor, in the file's order

gguf.GGUFReader trusts the file: a truncated or corrupt one makes it raise IndexError deep
inside, or loop for hours over an array length read from garbage. check(path) walks the header
(magic, version, the counts, every key/value, every tensor's info) with each read bounds-checked
and every count held to what the rest of the file can hold, then checks every tensor's type,
shape and data range against the file's size. It raises GGUFError with one line saying what is
wrong and where (the caller names the file). open_reader runs check, then GGUFReader, whose own
errors (none expected after check) also become GGUFError. check returns what it checked of each
tensor, (name, GGMLQuantizationType, data bytes): the file's weight inventory without GGUFReader,
which takes seconds to build its views of a 150k-token vocabulary.

Needs the `gguf` package (its type tables) and the standard library.
"""
import mmap
import os
import struct

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

HEADER_BYTES = 24  # magic, version, tensor count, key/value count
MAX_DIMS = 4  # GGML_MAX_DIMS
SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY, UINT32 = 8, 9, 4
MAX_NESTING = 8


class GGUFError(Exception):
  """The file is not a GGUF this importer can read; the message says what and where."""


class _Walker:
  def __init__(self, buf, size):
    self.buf, self.size, self.pos, self.order = buf, size, 0, "<"

  def take(self, n, what):
    if n > self.size - self.pos:
      raise GGUFError(
        f"truncated or corrupt: {what} at byte {self.pos} needs {n} bytes, but the file ends at byte {self.size}")
    start = self.pos
    self.pos += n
    return start

  def unpack(self, fmt, what):
    start = self.take(struct.calcsize(fmt), what)
    return struct.unpack_from(self.order + fmt, self.buf, start)[0]

  def count(self, what, unit):
    """A uint64 count of items of at least `unit` bytes each, held to the bytes left."""
    n = self.unpack("Q", f"the length of {what}")
    left = self.size - self.pos
    if n * unit > left:
      raise GGUFError(
        f"truncated or corrupt: {what}: length {n} at byte {self.pos - 8} runs past the end of the file ({left} bytes left)")
    return n

  def string(self, what):
    n = self.count(what, 1)
    start = self.take(n, what)
    try:
      return bytes(self.buf[start:start + n]).decode("utf-8")
    except UnicodeDecodeError:
      raise GGUFError(f"{what} at byte {start}: not valid UTF-8") from None

  def value(self, vtype, what, depth=0):
    """Skips one value of type `vtype`; returns it when it is a scalar (for general.alignment)."""
    if vtype in SCALAR_SIZES:
      start = self.take(SCALAR_SIZES[vtype], what)
      return self.buf[start:start + SCALAR_SIZES[vtype]]
    if vtype == STRING:
      self.string(what)
      return None
    if vtype != ARRAY:
      raise GGUFError(f"{what} at byte {self.pos - 4}: unknown value type {vtype}")
    if depth >= MAX_NESTING:
      raise GGUFError(f"{what}: arrays nested more than {MAX_NESTING} deep")
    itype = self.unpack("I", f"the item type of {what}")
    if itype not in SCALAR_SIZES and itype not in (STRING, ARRAY):
      raise GGUFError(f"{what} at byte {self.pos - 4}: unknown array item type {itype}")
    unit = SCALAR_SIZES.get(itype, 8 if itype == STRING else 12)
    n = self.count(what, unit)
    if itype in SCALAR_SIZES:
      self.take(n * unit, what)
    else:
      for i in range(n):
        self.value(itype, f"{what}[{i}]", depth + 1)
    return None


def _check(buf, size):
  w = _Walker(buf, size)
  if size < HEADER_BYTES:
    raise GGUFError(f"truncated: {size} bytes, shorter than the {HEADER_BYTES}-byte GGUF header")
  magic = bytes(buf[0:4])
  if magic != b"GGUF":
    raise GGUFError(f"not a GGUF file: it starts with {magic!r}, not b'GGUF'")
  w.pos = 4
  version = w.unpack("I", "the version")
  if version & 0xFFFF == 0:  # written on a machine of the other byte order (as gguf's reader guesses)
    w.order = ">"
    version = struct.unpack_from(">I", buf, 4)[0]
  if version not in (2, 3):
    raise GGUFError(f"GGUF version {version} is not supported (2 or 3)")
  n_tensors = w.unpack("Q", "the tensor count")
  n_kv = w.unpack("Q", "the key/value count")
  left = size - w.pos
  if n_kv * 13 > left:  # key length, an empty key, the type, a 1-byte value
    raise GGUFError(f"truncated or corrupt: the header says {n_kv} keys, more than the {left} bytes after it can hold")
  if n_tensors * 24 > left:  # name length, dimension count, type, offset
    raise GGUFError(f"truncated or corrupt: the header says {n_tensors} tensors, more than the {left} bytes after it can hold")
  alignment = 32
  keys = set()
  for i in range(n_kv):
    key = w.string(f"key #{i}")
    if key in keys:
      raise GGUFError(f"key '{key}' appears twice")
    keys.add(key)
    vtype = w.unpack("I", f"the value type of key '{key}'")
    raw = w.value(vtype, f"key '{key}'")
    if key == "general.alignment":
      if vtype != UINT32:
        raise GGUFError("general.alignment: not a uint32")
      alignment = struct.unpack_from(w.order + "I", raw)[0]
      if alignment == 0 or alignment & (alignment - 1):
        raise GGUFError(f"general.alignment: {alignment} is not a power of two")
  infos = []
  for i in range(n_tensors):
    name = w.string(f"the name of tensor #{i}")
    n_dims = w.unpack("I", f"the dimension count of tensor '{name}'")
    if n_dims > MAX_DIMS:
      raise GGUFError(f"tensor '{name}': {n_dims} dimensions (GGUF allows at most {MAX_DIMS})")
    dims = [w.unpack("Q", f"the dimensions of tensor '{name}'") for _ in range(n_dims)]
    ttype = w.unpack("I", f"the type of tensor '{name}'")
    offset = w.unpack("Q", f"the data offset of tensor '{name}'")
    infos.append((name, dims, ttype, offset))
  data_start = w.pos + (-w.pos % alignment)
  names = set()
  inventory = []
  for name, dims, ttype, offset in infos:
    if name in names:
      raise GGUFError(f"tensor '{name}' appears twice")
    names.add(name)
    try:
      qtype = GGMLQuantizationType(ttype)
      block, type_size = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
      raise GGUFError(f"tensor '{name}': unknown tensor type {ttype}") from None
    elements = 1
    for d in dims:
      elements *= d
    if dims and dims[0] % block:
      raise GGUFError(f"tensor '{name}': first dimension {dims[0]} is not a multiple of {qtype.name}'s block of {block}")
    n_bytes = elements // block * type_size
    begin = data_start + offset
    if begin + n_bytes > size:
      raise GGUFError(
        f"truncated or corrupt: tensor '{name}': its data [{begin}, {begin + n_bytes}) runs past the end of the file ({size} bytes)")
    inventory.append((name, qtype, n_bytes))
  return inventory


def check(path):
  """Raises GGUFError unless the file at `path` is a GGUF whose every part lies inside it; returns
  each tensor's (name, GGMLQuantizationType, data bytes) in the file's order."""
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError as e:
    raise GGUFError(f"cannot be opened ({e.strerror})") from None
  try:
    size = os.fstat(fd).st_size
    if not os.path.isfile(path):
      raise GGUFError("is not a regular file")
    if size == 0:
      raise GGUFError(f"truncated: 0 bytes, shorter than the {HEADER_BYTES}-byte GGUF header")
    try:
      buf = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
      raise GGUFError(f"cannot be read ({e})") from None
    try:
      return _check(buf, size)
    finally:
      buf.close()
  finally:
    os.close(fd)


def open_reader(path):
  """check(path), then gguf's GGUFReader for it; every failure is a GGUFError."""
  check(path)
  from gguf import GGUFReader

  try:
    return GGUFReader(path)
  except Exception as e:  # noqa: BLE001 - the structure passed check(); report anything left in one line
    raise GGUFError(f"not readable by gguf's reader ({type(e).__name__}: {e})") from None
