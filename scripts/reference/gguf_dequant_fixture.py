#!/usr/bin/env python3
"""Writes Tests/Fixtures/gguf/dequant.gguf (and tiny.gguf, the fuzz seed): random tensors of every ggml type attnax dequantizes,
each beside its float32 dequantization by the `gguf` package (the reference), plus metadata of
several value types written by gguf's own writer.

usage (tools venv):
  source scripts/lib/setup.sh && python="$(attnax_venv tools scripts/requirements-tools.txt)"
  "$python" scripts/reference/gguf_dequant_fixture.py [OUT.gguf]

For tensor NAME (type NAME's ggml type, numpy shape as listed) the file holds NAME.ref, an F32
tensor of the same shape holding gguf.quants.dequantize(NAME's bytes). The Swift test
(Tests/AttnaxFormatsTests/GGUFDequantTests.swift) dequantizes NAME and compares bit for bit.

Where the data comes from:
  q4_0 q4_1 q5_0 q5_1 q8_0   gguf.quants.quantize of random normal floats (with one all-zero
                             block and one block of a single spike, the edge cases of the scale)
  q2_K q3_K q4_K q5_K q6_K   random bytes (gguf cannot quantize these), with the float16 scale
                             fields (d, dmin) overwritten by random finite float16 values, so every
                             quant, sub-block scale and minimum pattern occurs
  f16 bf16                   random bit patterns (all classes: zeros, subnormals, normals, inf,
                             NaN), dequantized by gguf as well
  f32                        random floats
  iq4_nl                     random bytes, no reference: attnax refuses this type
"""

import importlib.metadata
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "Tests", "Fixtures", "gguf", "dequant.gguf")
rng = np.random.default_rng(20261206)


def f16_field(n: int, low: float, high: float) -> np.ndarray:
  """n random finite float16 values as (n, 2) bytes."""
  return rng.uniform(low, high, size=n).astype(np.float16).view(np.uint8).reshape(n, 2)


def k_quant_blocks(qtype: T, rows: int, cols: int) -> np.ndarray:
  """Random super-blocks of a K-quant with finite float16 scales, as (rows, bytes per row)."""
  block, size = gguf.GGML_QUANT_SIZES[qtype]
  n = rows * cols // block
  raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
  # Byte offsets of the float16 fields in one block (ggml-common.h's block_q*_K).
  fields = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}[qtype]
  for at in fields:
    raw[:, at:at + 2] = f16_field(n, -0.02, 0.02)
  return raw.reshape(rows, cols // block * size)


def floats_for_32_blocks(rows: int, cols: int) -> np.ndarray:
  x = rng.standard_normal((rows, cols)).astype(np.float32)
  x[0, :32] = 0  # an all-zero block: scale 0
  x[1, 32:64] = 0
  x[1, 40] = 3.5  # one spike: the extreme quant
  return x


writer = gguf.GGUFWriter(OUT, arch="attnax-fixture")
writer.add_name("attnax dequantization fixture")
writer.add_uint8("fixture.u8", 250)
writer.add_int8("fixture.i8", -7)
writer.add_uint16("fixture.u16", 65535)
writer.add_int16("fixture.i16", -32768)
writer.add_uint32("fixture.u32", 4294967295)
writer.add_int32("fixture.i32", -123456)
writer.add_uint64("fixture.u64", 2**63 + 5)
writer.add_int64("fixture.i64", -(2**40))
writer.add_float32("fixture.f32", 0.1)
writer.add_float64("fixture.f64", 1e-300)
writer.add_bool("fixture.bool", True)
writer.add_string("fixture.string", "héllo ✓")
writer.add_array("fixture.strings", ["a", "", "Ġb"])
writer.add_array("fixture.nested", [[1, 2], [3]])
writer.add_string("fixture.generator", f"gguf {importlib.metadata.version('gguf')}")

tensors: list[tuple[str, np.ndarray, T, tuple[int, ...]]] = []  # name, stored bytes/values, type, numpy shape

for name, qtype in [("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q5_0", T.Q5_0), ("q5_1", T.Q5_1), ("q8_0", T.Q8_0)]:
  x = floats_for_32_blocks(4, 96)
  tensors.append((name, quantize(x, qtype), qtype, x.shape))
# A 3-D tensor (read whole, shaped) and a 1-D one (column slices).
x3 = rng.standard_normal((2, 3, 64)).astype(np.float32)
tensors.append(("q8_0.3d", quantize(x3, T.Q8_0), T.Q8_0, x3.shape))

for name, qtype in [("q2_K", T.Q2_K), ("q3_K", T.Q3_K), ("q4_K", T.Q4_K), ("q5_K", T.Q5_K), ("q6_K", T.Q6_K)]:
  tensors.append((name, k_quant_blocks(qtype, 3, 512), qtype, (3, 512)))
tensors.append(("q4_K.1d", k_quant_blocks(T.Q4_K, 1, 512).reshape(-1), T.Q4_K, (512,)))

bits16 = rng.integers(0, 1 << 16, size=(4, 256), dtype=np.uint16)
bits16[0, :8] = [0x0000, 0x8000, 0x0001, 0x83FF, 0x7C00, 0xFC00, 0x7E00, 0x7C01]  # ±0, subnormals, ±inf, NaNs
tensors.append(("f16", bits16.view(np.float16), T.F16, bits16.shape))
tensors.append(("bf16", bits16.copy().view(np.uint8).reshape(4, 512), T.BF16, bits16.shape))
f32 = rng.standard_normal((2, 48)).astype(np.float32)
tensors.append(("f32", f32, T.F32, f32.shape))

for name, data, qtype, shape in tensors:
  raw_dtype = None if qtype in (T.F32, T.F16) else qtype
  writer.add_tensor(name, data, raw_dtype=raw_dtype)
  ref = dequantize(data.view(np.uint8) if raw_dtype is not None else data, qtype).astype(np.float32).reshape(shape)
  assert ref.shape == shape, (name, ref.shape, shape)
  writer.add_tensor(f"{name}.ref", np.ascontiguousarray(ref))

writer.add_tensor("unsupported.iq4_nl", rng.integers(0, 256, size=(2, 18), dtype=np.uint8), raw_dtype=T.IQ4_NL)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
print(f"{OUT}: {os.path.getsize(OUT)} bytes, {len(tensors)} tensors with references")

# A tiny file beside it: the fuzz target's small seed (scripts/fuzz gguf), one tensor per block
# family and metadata of each kind a model file has.
TINY = os.path.join(os.path.dirname(OUT), "tiny.gguf")
tiny = gguf.GGUFWriter(TINY, arch="llama")
tiny.add_uint32("llama.context_length", 64)
tiny.add_float32("llama.rope.freq_base", 10000.0)
tiny.add_bool("tokenizer.ggml.add_bos_token", True)
tiny.add_array("tokenizer.ggml.tokens", ["<s>", "a", "b"])
tiny.add_array("tokenizer.ggml.token_type", [3, 1, 1])
tiny.add_tensor("q4_0", quantize(floats_for_32_blocks(2, 64), T.Q4_0), raw_dtype=T.Q4_0)
tiny.add_tensor("q6_K", k_quant_blocks(T.Q6_K, 1, 256), raw_dtype=T.Q6_K)
tiny.add_tensor("f16", rng.standard_normal((2, 4)).astype(np.float16))
tiny.add_tensor("f32", rng.standard_normal((3,)).astype(np.float32))
tiny.write_header_to_file()
tiny.write_kv_data_to_file()
tiny.write_tensors_to_file()
tiny.close()
print(f"{TINY}: {os.path.getsize(TINY)} bytes")
