#!/usr/bin/env python3
"""Writes the repository's own golden cases (Tests/Fixtures/golden) with attnax 0.2.0.

usage: make_golden.py OUT_DIR [--only NAME ...]
       make_golden.py --check DIR      (regenerate into a temporary folder and compare with DIR)

Every case of CASES below becomes OUT_DIR/NAME/ with config.json, model.safetensors,
io.safetensors and meta.json in exactly the format of the shared golden cases (see
Tests/Fixtures/golden/README.md): an encoder or decoder block stack built by attnax 0.2.0,
its weights (biases and norm parameters perturbed so that none is trivially 0 or 1), its
inputs, and the output attnax computes on CPU in float32, inference mode.

Deterministic: each case seeds numpy and nnx.Rngs from the CRC-32 of its name, nothing else
is random, and nothing outside this script is read. Each case is written to a temporary
folder and renamed into place; any error (attnax refusing a configuration, a failed check)
prints the case and the traceback and the script exits 1 after trying the remaining cases.
Folders in OUT_DIR that are not in CASES are reported (not deleted).

--check DIR regenerates every case and compares it with DIR: the same case folders, equal
config.json and meta.json, the same tensor names, shapes and dtypes, integer tensors equal and
float tensors within atol/30 (JAX on another CPU may round differently; on this one two runs
were bit-identical). Exit 1 on any difference, so it shows that DIR is what this script makes.

Checks made while generating (a failure is an error, not a skipped case):
- the config and tensor names/shapes match what attnax-swift reads (export_attnax's checks);
- outputs are finite;
- blocked backends (memory_efficient, flash, pallas_flash) agree with attnax's own standard
  attention on the same weights and inputs to atol/10 (attnax's blocked path slices the mask's
  query axis per block and adds a bias whole to every block, so broadcast masks and biases
  larger than a block break it), so that no case captures a blocked-path artefact;
- KV-cache cases: attnax's cached decoding is run as well. With `reference: "attnax"` it must
  agree with the full-sequence forward to atol/10; with `reference: "full_sequence"` the
  expected outputs come from the full-sequence forward (attnax 0.2.0 restarts score-mod,
  window and default RoPE positions at 0 when a cache is used), and the script reports how
  far attnax's cache path is off.

Ran with (pip, Python 3.11, CPU; pinned in scripts/requirements-attnax.txt):
  attnax==0.2.0 jax==0.10.2 jaxlib==0.10.2 flax==0.12.8 numpy==2.4.6
Set up:  python3 -m venv ~/.cache/attnax/venv-attnax
         ~/.cache/attnax/venv-attnax/bin/pip install -r scripts/requirements-attnax.txt
Run:     ~/.cache/attnax/venv-attnax/bin/python scripts/make_golden.py Tests/Fixtures/golden
"""
from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import json
import sys
import tempfile
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "pylib"))
sys.path.insert(0, HERE)

import model_dir  # noqa: E402
import safetensors_io  # noqa: E402

# ------------------------------------------------------------------------------------------
# Input helpers (numpy; uint8 masks with 1 = attend, int32 positions)


def causal(q: int) -> np.ndarray:
  """(1, 1, q, q) lower-triangular mask."""
  return np.tril(np.ones((q, q), np.uint8))[None, None]


def key_padding(valid: list[int], kv: int) -> np.ndarray:
  """(batch, 1, 1, kv): row b attends to its first valid[b] keys."""
  return np.stack([(np.arange(kv) < v).astype(np.uint8) for v in valid])[:, None, None, :]


def left_padding(pad: list[int], kv: int) -> np.ndarray:
  """(batch, 1, 1, kv): row b skips its first pad[b] keys."""
  return np.stack([(np.arange(kv) >= p).astype(np.uint8) for p in pad])[:, None, None, :]


def full(mask: np.ndarray, batch: int, q: int, kv: int) -> np.ndarray:
  """A mask broadcast to (batch, 1, q, kv), as the blocked backends need once q or kv spans
  more than one block (attnax slices the q axis of the mask per block)."""
  return np.ascontiguousarray(np.broadcast_to(mask, (batch, 1, q, kv))).astype(np.uint8)


def random_mask(r: np.random.Generator, shape, p_keep: float) -> np.ndarray:
  return (r.random(shape) < p_keep).astype(np.uint8)


def positions(rows: list[list[int]]) -> np.ndarray:
  return np.asarray(rows, np.int32)


# ------------------------------------------------------------------------------------------
# The cases


@dataclass
class Case:
  name: str
  description: str
  block: str  # "encoder" | "decoder"
  seq: int  # query length (KV-cache cases: unused, the steps' lengths add up to the sequence)
  seq_kv: Optional[int] = None  # decoder: encoder_output length
  batch: int = 2
  num_layers: int = 1
  # constructor arguments of EncoderBlock / DecoderBlock (attnax names); defaults below
  args: dict = field(default_factory=dict)
  score_mods: list = field(default_factory=list)
  # inputs beyond x / encoder_output: fn(rng) -> {name: array} under the golden names
  inputs: Optional[Callable[[np.random.Generator], dict]] = None
  x_scale: float = 1.0
  tol: float = 1e-4
  # KV-cache cases: tokens per step (step 0 is the prefill), cache capacity, and whether each
  # step carries explicit positions / a causal self_mask (rows of the full causal mask).
  kv_steps: Optional[list[int]] = None
  kv_max_len: Optional[int] = None
  kv_explicit_positions: bool = False
  kv_causal_self_mask: bool = False
  reference: str = "attnax"  # or "full_sequence" (KV-cache cases where attnax's cache path is wrong)


DEFAULT_ARGS = dict(
  d_model=32, num_heads=4, d_ff=64, dropout_rate=0.0, pre_norm=True, attention_type="standard",
  attention_block_size=512, linear_attention_chunk_size=64, norm_type="layer", ff_activation="gelu",
  num_kv_heads=None, attention_window=None, use_rope=False, rope_base=10000.0, rope_max_positions=8192,
)

# Sequence lengths are odd (mostly prime) so that they split unevenly over 2, 3 and 4 ranks
# and leave a ragged last block on every blocked backend.
CASES = [
  Case("enc_basic_s13",
       "Encoder, pre-norm LayerNorm, GELU, MHA 4 heads, standard attention, seq 13, no mask.",
       "encoder", seq=13),
  Case("enc_small_input_layernorm_eps_s11",
       "Encoder, pre-norm LayerNorm with tiny inputs (x ~ 0.003*N(0,1), var ~ 1e-5) so epsilon 1e-6 "
       "and the norm math matter; ReLU.",
       "encoder", seq=11, args=dict(ff_activation="relu"), x_scale=0.003),
  Case("enc_fully_masked_rows_s9",
       "Encoder, standard attention, mask (2,1,9,9): batch 0 causal with query rows 2 and 6 fully masked, "
       "batch 1 fully masked (uniform attention over all keys).",
       "encoder", seq=9,
       inputs=lambda r: {"mask": np.stack([
         np.tril(np.ones((9, 9), np.uint8)) * (~np.isin(np.arange(9), [2, 6]))[:, None].astype(np.uint8),
         np.zeros((9, 9), np.uint8)])[:, None]}),
  Case("enc_memeff_b4_fully_masked_rows_s15",
       "Encoder, memory_efficient block 4 on seq 15 (4 blocks, last of 3), mask (2,1,15,15): batch 0 random "
       "with query rows 1, 6 and 13 fully masked (masked rows span every key block), batch 1 fully masked.",
       "encoder", seq=15, args=dict(attention_type="memory_efficient", attention_block_size=4),
       inputs=lambda r: {"mask": np.stack([
         random_mask(r, (15, 15), 0.6) * (~np.isin(np.arange(15), [1, 6, 13]))[:, None].astype(np.uint8),
         np.zeros((15, 15), np.uint8)])[:, None]}),
  Case("enc_memeff_b5_swin_noncausal_s17",
       "Encoder, memory_efficient block 5 on seq 17 (4 ragged blocks), non-causal sliding_window(3) score mod, "
       "key-padding mask broadcast to (2,1,17,17).",
       "encoder", seq=17, args=dict(attention_type="memory_efficient", attention_block_size=5),
       score_mods=[{"type": "sliding_window", "window_size": 3, "causal": False}],
       inputs=lambda r: {"mask": full(key_padding([17, 12], 17), 2, 17, 17)}),
  Case("enc_flash_b7_causal_leftpad_s23",
       "Encoder, flash block 7 on seq 23, head_dim 16, causal score mod + left-padding mask (2,1,23,23): "
       "batch 1 query rows 0..4 are fully masked.",
       "encoder", seq=23, args=dict(num_heads=2, attention_type="flash", attention_block_size=7),
       score_mods=[{"type": "causal"}],
       inputs=lambda r: {"mask": full(left_padding([0, 5], 23), 2, 23, 23)}),
  Case("enc_pallas_b3_alibi_h6_s19",
       "Encoder, post-norm, ReLU, pallas_flash block 3 on seq 19 (CPU fallback: blocked online softmax), "
       "ALiBi with 6 heads (non-power-of-two slope schedule).",
       "encoder", seq=19, batch=1,
       args=dict(d_model=48, num_heads=6, pre_norm=False, ff_activation="relu", attention_type="pallas_flash",
                 attention_block_size=3),
       score_mods=[{"type": "alibi"}]),
  Case("enc_linear_c5_padmask_s25",
       "Encoder, linear attention chunk 5 on seq 25 (always causal in attnax), key-padding mask (2,1,1,25) "
       "(only mask[...,0,:] is read).",
       "encoder", seq=25, args=dict(attention_type="linear", linear_attention_chunk_size=5),
       inputs=lambda r: {"mask": key_padding([25, 18], 25)}),
  Case("enc_lite_mask_s11",
       "Encoder, lite (gated element-wise) attention with a (2,1,11,11) random mask (lite reads only "
       "mask[..., :, :1]).",
       "encoder", seq=11, args=dict(attention_type="lite"),
       inputs=lambda r: {"mask": random_mask(r, (2, 1, 11, 11), 0.6)}),
  Case("enc_gqa8x2_swiglu_rope_s19",
       "Encoder, GQA 8 query heads / 2 KV heads, SwiGLU FFN, RoPE with default positions 0..seq-1.",
       "encoder", seq=19,
       args=dict(d_model=64, num_heads=8, d_ff=128, num_kv_heads=2, ff_activation="swiglu", use_rope=True,
                 rope_max_positions=128)),
  Case("enc_mqa_geglu_rope_posids_s15",
       "Encoder, post-norm LayerNorm, MQA (4 heads / 1 KV head), GeGLU FFN, RoPE base 500 with explicit "
       "per-batch position_ids (repeats and gaps).",
       "encoder", seq=15,
       args=dict(d_ff=80, pre_norm=False, num_kv_heads=1, ff_activation="geglu", use_rope=True, rope_base=500.0,
                 rope_max_positions=64),
       inputs=lambda r: {"position_ids": positions([list(range(3, 18)),
                                                    [0, 0, 1, 1, 2, 5, 9, 14, 20, 27, 35, 44, 50, 61, 63]])}),
  Case("enc_h6_kv3_rms_padmask_s13",
       "Encoder, 6 query heads / 3 KV heads (head_dim 8, heads do not split evenly over 4 ranks), RMSNorm, "
       "key-padding mask (2,1,1,13).",
       "encoder", seq=13, args=dict(d_model=48, num_heads=6, d_ff=96, num_kv_heads=3, norm_type="rms"),
       inputs=lambda r: {"mask": key_padding([13, 8], 13)}),
  Case("enc_postnorm_rms_relu_dropout_padmask_s11",
       "Encoder, post-norm RMSNorm, ReLU FFN, head_dim 12, key-padding mask (2,1,1,11); dropout_rate 0.1 "
       "must be inactive (inference).",
       "encoder", seq=11,
       args=dict(d_model=48, d_ff=96, dropout_rate=0.1, pre_norm=False, norm_type="rms", ff_activation="relu"),
       inputs=lambda r: {"mask": key_padding([11, 6], 11)}),
  Case("enc_stack3_post_rms_geglu_window5_s17",
       "Encoder stack of 3 blocks, post-norm RMSNorm, GeGLU, attention_window 5 (causal sliding window).",
       "encoder", seq=17, num_layers=3,
       args=dict(pre_norm=False, norm_type="rms", ff_activation="geglu", attention_window=5), tol=2e-4),
  Case("enc_document_mask_rope_s19",
       "Encoder, document_mask score mod (3 and 2 packed documents), RoPE default positions.",
       "encoder", seq=19, args=dict(use_rope=True),
       score_mods=[{"type": "document_mask",
                    "document_ids": [[0] * 6 + [1] * 8 + [2] * 5, [0] * 11 + [1] * 8]}]),
  Case("enc_prefix_lm_swiglu_s13",
       "Encoder, SwiGLU, prefix_lm score mod with prefix_lengths [4, 9].",
       "encoder", seq=13, args=dict(ff_activation="swiglu"),
       score_mods=[{"type": "prefix_lm", "prefix_lengths": [4, 9]}]),
  Case("enc_memeff_b6_prefix_lm_alibi_gqa_s17",
       "Encoder, memory_efficient block 6 on seq 17, GQA 4/2, score mods [prefix_lm [5, 0], alibi] composed "
       "in order, key-padding mask broadcast to (2,1,17,17).",
       "encoder", seq=17,
       args=dict(num_kv_heads=2, attention_type="memory_efficient", attention_block_size=6),
       score_mods=[{"type": "prefix_lm", "prefix_lengths": [5, 0]}, {"type": "alibi"}],
       inputs=lambda r: {"mask": full(key_padding([17, 14], 17), 2, 17, 17)}),
  Case("enc_additive_bias_s11",
       "Encoder, additive_bias score mod with a per-head bias tensor attn_bias of shape (1,4,11,11).",
       "encoder", seq=11, score_mods=[{"type": "additive_bias", "tensor": "attn_bias"}],
       inputs=lambda r: {"attn_bias": r.standard_normal((1, 4, 11, 11)).astype(np.float32)}),
  Case("enc_seqpar_flash_b32_causal_s251",
       "Sequence-parallel target: encoder, flash block 32 on seq 251 (8 blocks, last of 27; splits unevenly "
       "over 2, 3 and 4 ranks), causal score mod, d_model 64, 4 heads.",
       "encoder", seq=251, batch=1,
       args=dict(d_model=64, d_ff=128, attention_type="flash", attention_block_size=32),
       score_mods=[{"type": "causal"}], tol=2e-4),

  Case("dec_basic_s11_kv13",
       "Decoder, pre-norm LayerNorm, GELU, MHA, causal self_mask (1,1,11,11), cross key-padding mask "
       "(2,1,1,13), seq_q 11 != seq_kv 13.",
       "decoder", seq=11, seq_kv=13,
       inputs=lambda r: {"self_mask": causal(11), "cross_mask": key_padding([13, 9], 13)}),
  Case("dec_mqa_relu_window3_s13_kv7",
       "Decoder, MQA 4/1, ReLU, attention_window 3 (self-attention only; cross-attention unaffected), "
       "cross key-padding mask.",
       "decoder", seq=13, seq_kv=7, args=dict(num_kv_heads=1, ff_activation="relu", attention_window=3),
       inputs=lambda r: {"cross_mask": key_padding([7, 4], 7)}),
  Case("dec_pallas_b5_swin_causal_s13_kv11",
       "Decoder, pallas_flash block 5, seq_q 13 / seq_kv 11 (ragged blocks in self and cross), causal "
       "sliding_window(4) score mod, random cross mask (2,1,13,11) with padding.",
       "decoder", seq=13, seq_kv=11, args=dict(attention_type="pallas_flash", attention_block_size=5),
       score_mods=[{"type": "sliding_window", "window_size": 4, "causal": True}],
       inputs=lambda r: {"cross_mask": random_mask(r, (2, 1, 13, 11), 0.8) * full(key_padding([11, 8], 11), 2, 13, 11)}),
  Case("dec_flash_b4_gqa_rope_docmask_s15_kv9",
       "Decoder, flash block 4, GQA 4/2, RoPE default positions (self and cross), document_mask score mod on "
       "self-attention, self_mask causal & left padding (2,1,15,15), cross_mask (2,1,15,9) with padding.",
       "decoder", seq=15, seq_kv=9,
       args=dict(num_kv_heads=2, attention_type="flash", attention_block_size=4, use_rope=True,
                 rope_max_positions=64, norm_type="rms"),
       score_mods=[{"type": "document_mask", "document_ids": [[0] * 7 + [1] * 8, [0] * 3 + [1] * 9 + [2] * 3]}],
       inputs=lambda r: {"self_mask": full(causal(15), 2, 15, 15) * full(left_padding([0, 2], 15), 2, 15, 15),
                         "cross_mask": full(key_padding([9, 6], 9), 2, 15, 9)}),
  Case("dec_linear_c7_s35",
       "Decoder, linear attention chunk 7, seq_q == seq_kv == 35 (required); both self- and cross-attention "
       "are causal linear attention; RMSNorm; padding masks.",
       "decoder", seq=35, seq_kv=35,
       args=dict(attention_type="linear", linear_attention_chunk_size=7, norm_type="rms"),
       inputs=lambda r: {"self_mask": key_padding([35, 30], 35), "cross_mask": key_padding([29, 35], 35)}),
  Case("dec_lite_cross_s9_kv7",
       "Decoder, lite attention, seq_q 9 != seq_kv 7 (cross-attention then uses only encoder position 0); "
       "cross_mask masks key 0 of batch 1.",
       "decoder", seq=9, seq_kv=7, args=dict(attention_type="lite"),
       inputs=lambda r: {"cross_mask": left_padding([0, 1], 7)}),
  Case("dec_post_rms_swiglu_gqa_rope_posids_s11_kv15",
       "Decoder, post-norm RMSNorm, SwiGLU, GQA 8/2, RoPE (also in cross-attention) with explicit "
       "position_ids_self / _cross_q / _cross_kv.",
       "decoder", seq=11, seq_kv=15,
       args=dict(d_model=64, num_heads=8, d_ff=128, pre_norm=False, norm_type="rms", ff_activation="swiglu",
                 num_kv_heads=2, use_rope=True, rope_max_positions=256),
       inputs=lambda r: {"self_mask": causal(11),
                         "position_ids_self": positions([list(range(5, 16)), list(range(11))]),
                         "position_ids_cross_q": positions([list(range(40, 51)), list(range(7, 18))]),
                         "position_ids_cross_kv": positions([list(range(15)), list(range(100, 145, 3))])}),
  Case("dec_stack2_causal_alibi_geglu_s13_kv9",
       "Decoder stack of 2 blocks, 8 heads (head_dim 4), GeGLU, score mods [causal, alibi] composed in order "
       "(self-attention only).",
       "decoder", seq=13, seq_kv=9, num_layers=2, args=dict(num_heads=8, ff_activation="geglu"),
       score_mods=[{"type": "causal"}, {"type": "alibi"}], tol=2e-4),
  Case("dec_kvcache_gqa_rope_posids",
       "Decoder stack of 2, GQA 8/2, RoPE, KV cache: prefill 5 tokens, then steps of 1, 3, 1, 1 tokens "
       "(one cache per layer, max_len 13); explicit positions and causal self_mask per step; attnax's cached "
       "decoding agrees with its full-sequence forward.",
       "decoder", seq=0, seq_kv=7, num_layers=2,
       args=dict(d_model=64, num_heads=8, d_ff=64, num_kv_heads=2, use_rope=True, rope_max_positions=64),
       kv_steps=[5, 1, 3, 1, 1], kv_max_len=13, kv_explicit_positions=True, kv_causal_self_mask=True,
       inputs=lambda r: {"cross_mask": key_padding([7, 5], 7)}, tol=2e-4),
  Case("dec_kvcache_window_alibi_rope_default_pos",
       "Decoder, MQA 4/1, RoPE with default positions, attention_window 4 and score mods [causal, alibi], "
       "KV cache: prefill 6, then steps of 1, 2, 1, 1 tokens (max_len 12), no self_mask. Positions continue "
       "from the cache; attnax 0.2.0 restarts them at 0, so y is the full-sequence forward's.",
       "decoder", seq=0, seq_kv=5,
       args=dict(num_kv_heads=1, use_rope=True, rope_max_positions=64, attention_window=4),
       score_mods=[{"type": "causal"}, {"type": "alibi"}],
       kv_steps=[6, 1, 2, 1, 1], kv_max_len=12, inputs=lambda r: {"cross_mask": key_padding([5, 3], 5)},
       reference="full_sequence", tol=2e-4),
]

# ------------------------------------------------------------------------------------------
# Generation


def seed_of(name: str) -> int:
  return zlib.crc32(name.encode())


def perturb(module, r: np.random.Generator) -> None:
  """Biases ~ 0.1 N(0,1), norm scales ~ 1 + 0.2 N(0,1) (attnax initialises them to 0 and 1)."""
  import flax.nnx as nnx
  import jax.numpy as jnp

  st = nnx.state(module, nnx.Param)
  for path, v in nnx.to_flat_state(st):
    shape = v[...].shape
    if path[-1] == "bias":
      v[...] = jnp.asarray(0.1 * r.standard_normal(shape), jnp.float32)
    elif path[-1] == "scale":
      v[...] = jnp.asarray(1.0 + 0.2 * r.standard_normal(shape), jnp.float32)
  nnx.update(module, st)


def make_layers(c: Case, args: dict, tensors: dict) -> list:
  """The attnax blocks of case `c` built with `args` (weights from the case's seed)."""
  import attnax
  import flax.nnx as nnx
  from export_attnax import score_mod_from_specs

  cls = attnax.EncoderBlock if c.block == "encoder" else attnax.DecoderBlock
  layers = []
  for i in range(c.num_layers):
    kw = dict(args, attention_type=attnax.AttentionType(args["attention_type"]),
              score_mod=score_mod_from_specs(c.score_mods, args["num_heads"], tensors))
    blk = cls(nnx.Rngs(seed_of(c.name) % 100000 * 10 + i), **kw)
    perturb(blk, np.random.default_rng([seed_of(c.name), 1000 + i]))
    layers.append(blk)
  return layers


def call_kwargs(c: Case, io: dict, prefix: str = "") -> dict:
  """attnax call arguments from golden-named tensors (with an optional step prefix)."""
  import jax.numpy as jnp

  def get(n):
    return io.get(prefix + n, io.get(n))

  names = (["mask", "position_ids"] if c.block == "encoder" else
           ["encoder_output", "self_mask", "cross_mask", "position_ids_self", "position_ids_cross_q",
            "position_ids_cross_kv"])
  kw = {}
  for n in names:
    a = get(n)
    if a is None:
      continue
    kw[n] = jnp.asarray(a, bool) if a.dtype == np.uint8 else jnp.asarray(a)
  return kw


def run_stack(layers, x, kw):
  import jax.numpy as jnp

  y = jnp.asarray(x)
  for blk in layers:
    y = blk(y, deterministic=True, **kw)
  return np.asarray(y, np.float32)


def check_finite(name, a):
  if not np.all(np.isfinite(a)):
    raise RuntimeError(f"{name} holds non-finite values")


def generate(c: Case) -> tuple[dict, dict, dict, dict]:
  """(config, params, io, meta) of case c."""
  import jax.numpy as jnp
  from attnax.cache import init_kv_layer_cache
  from export_attnax import block_config, module_params, expected_shapes, _check_tensors

  r = np.random.default_rng(seed_of(c.name))
  args = dict(DEFAULT_ARGS, **c.args)
  d = args["d_model"]
  extra = c.inputs(r) if c.inputs else {}
  tensors = {s["tensor"]: extra[s["tensor"]] for s in c.score_mods if s["type"] == "additive_bias"}
  layers = make_layers(c, args, tensors)

  config = block_config(layers, args, score_mods=c.score_mods)
  params = {}
  for i, blk in enumerate(layers):
    for n, a in module_params(blk).items():
      params[f"layers.{i}.{n}"] = a
  _check_tensors(params, expected_shapes(config), c.name)

  io = dict(extra)
  tol = c.tol
  meta = {"description": c.description, "atol": tol, "rtol": tol, "reference": c.reference}

  if c.kv_steps is None:
    io["x"] = (c.x_scale * r.standard_normal((c.batch, c.seq, d))).astype(np.float32)
    if c.block == "decoder":
      io["encoder_output"] = r.standard_normal((c.batch, c.seq_kv, d)).astype(np.float32)
    io["y"] = run_stack(layers, io["x"], call_kwargs(c, io))
    check_finite("y", io["y"])
    if args["attention_type"] in ("memory_efficient", "flash", "pallas_flash"):
      # The blocked path must agree with attnax's own standard attention (same weights).
      std = make_layers(c, dict(args, attention_type="standard"), tensors)
      y_std = run_stack(std, io["x"], call_kwargs(c, io))
      diff = float(np.max(np.abs(y_std - io["y"])))
      if diff > tol / 10:
        raise RuntimeError(f"attnax's {args['attention_type']} path differs from its standard attention by {diff:.3g} "
                           f"(> atol/10): the case hits a blocked-backend artefact")
    return config, params, io, meta

  # KV-cache case: inputs per step, expected output from attnax's cache path or the full sequence.
  if c.block != "decoder":
    raise ValueError("KV-cache cases are decoder cases here")
  total = sum(c.kv_steps)
  if total > c.kv_max_len:
    raise ValueError(f"steps {c.kv_steps} overflow max_len {c.kv_max_len}")
  config["kv_cache"] = {"max_len": c.kv_max_len, "steps": len(c.kv_steps)}
  x_full = r.standard_normal((c.batch, total, d)).astype(np.float32)
  io["encoder_output"] = r.standard_normal((c.batch, c.seq_kv, d)).astype(np.float32)
  pos_full = np.broadcast_to(np.arange(total, dtype=np.int32), (c.batch, total))
  full_io = dict(io)
  if c.kv_causal_self_mask:
    full_io["self_mask"] = causal(total)
  if c.kv_explicit_positions:
    full_io["position_ids_self"] = full_io["position_ids_cross_q"] = np.ascontiguousarray(pos_full)
  y_full = run_stack(layers, x_full, call_kwargs(c, full_io))
  check_finite("y (full sequence)", y_full)

  # attnax's cached decoding
  head_dim = d // args["num_heads"]
  kv_heads = args["num_kv_heads"] or args["num_heads"]
  caches = [init_kv_layer_cache(c.batch, kv_heads, head_dim, c.kv_max_len, jnp.float32) for _ in layers]
  start = 0
  worst_cache = 0.0
  for k, n in enumerate(c.kv_steps):
    end = start + n
    p = f"step{k}."
    io[p + "x"] = np.ascontiguousarray(x_full[:, start:end])
    if c.kv_causal_self_mask:
      io[p + "self_mask"] = np.ascontiguousarray(causal(total)[..., start:end, :end])
    if c.kv_explicit_positions:
      io[p + "position_ids_self"] = io[p + "position_ids_cross_q"] = np.ascontiguousarray(pos_full[:, start:end])
    kw = call_kwargs(c, io, p)
    y = jnp.asarray(io[p + "x"])
    for i, blk in enumerate(layers):
      y, caches[i] = blk(y, deterministic=True, self_attn_kv_cache=caches[i], **kw)
    y_cache = np.asarray(y, np.float32)
    check_finite(p + "y (cache path)", y_cache)
    y_ref = np.ascontiguousarray(y_full[:, start:end])
    worst_cache = max(worst_cache, float(np.max(np.abs(y_cache - y_ref))))
    io[p + "y"] = y_cache if c.reference == "attnax" else y_ref
    start = end
  if c.reference == "attnax":
    if worst_cache > tol / 10:
      raise RuntimeError(f"attnax's cache path differs from its full-sequence forward by {worst_cache:.3g} (> atol/10); "
                         f"use reference full_sequence if that is attnax's position bug")
  elif c.reference == "full_sequence":
    print(f"  {c.name}: attnax's cache path is off by {worst_cache:.3g} (expected outputs are the full-sequence forward's)")
  else:
    raise ValueError(f"unknown reference {c.reference!r}")
  return config, params, io, meta


CASE_FILES = ("config.json", "meta.json", "model.safetensors", "io.safetensors")


def write_case(out_dir: str, c: Case) -> None:
  """Writes case `c` to OUT_DIR/<name>, replacing it atomically (scripts/pylib/model_dir.py)."""
  path = os.path.join(out_dir, c.name)
  model_dir.check_output(path, "make_golden.py", files=CASE_FILES)  # before the work
  config, params, io, meta = generate(c)
  # The case folders are committed fixtures: no marker file; an existing folder is replaced only
  # when it holds exactly the four files written here.
  with model_dir.staged_directory(path, "make_golden.py", files=CASE_FILES) as tmp:
    with open(os.path.join(tmp, "config.json"), "w") as f:
      json.dump(config, f, indent=2)
      f.write("\n")
    with open(os.path.join(tmp, "meta.json"), "w") as f:
      json.dump(meta, f)
      f.write("\n")
    safetensors_io.write(os.path.join(tmp, "model.safetensors"), params)
    safetensors_io.write(os.path.join(tmp, "io.safetensors"), io)


def compare(made: str, committed: str) -> list[str]:
  """Differences between two golden folders (see --check)."""
  problems = []
  want = sorted(n for n in os.listdir(made) if os.path.isdir(os.path.join(made, n)) and not n.startswith("."))
  have = sorted(n for n in os.listdir(committed) if os.path.isdir(os.path.join(committed, n)) and not n.startswith("."))
  for n in sorted(set(want) ^ set(have)):
    problems.append(f"{n}: {'missing from' if n in want else 'not made by this script, but in'} {committed}")
  tols = {c.name: c.tol for c in CASES}
  for n in sorted(set(want) & set(have)):
    a, b = os.path.join(made, n), os.path.join(committed, n)
    for f in ("config.json", "meta.json"):
      try:
        if json.load(open(os.path.join(a, f))) != json.load(open(os.path.join(b, f))):
          problems.append(f"{n}/{f} differs")
      except (OSError, ValueError) as e:
        problems.append(f"{n}/{f}: {e}")
    for f in ("model.safetensors", "io.safetensors"):
      try:
        ta, tb = safetensors_io.read(os.path.join(a, f)), safetensors_io.read(os.path.join(b, f))
      except (OSError, ValueError, KeyError) as e:
        problems.append(f"{n}/{f}: {e}")
        continue
      if sorted(ta) != sorted(tb):
        problems.append(f"{n}/{f}: tensor names differ ({sorted(set(ta) ^ set(tb))})")
        continue
      for t in sorted(ta):
        x, y = ta[t], tb[t]
        if x.dtype != y.dtype or x.shape != y.shape:
          problems.append(f"{n}/{f}: {t} is {y.dtype}{list(y.shape)}, the script makes {x.dtype}{list(x.shape)}")
        elif np.issubdtype(x.dtype, np.floating):
          err = float(np.max(np.abs(x - y), initial=0.0))
          if not err <= tols[n] / 30:
            problems.append(f"{n}/{f}: {t} differs by up to {err:.3g} (> atol/30)")
        elif not np.array_equal(x, y):
          problems.append(f"{n}/{f}: {t} differs")
  return problems


def main(argv: list[str]) -> int:
  if len(argv) == 2 and argv[0] == "--check":
    with tempfile.TemporaryDirectory(prefix="make_golden-check-") as tmp:
      rc = main([tmp])
      if rc != 0:
        return rc
      problems = compare(tmp, argv[1])
    for p in problems:
      print(f"make_golden --check: {p}", file=sys.stderr)
    print(f"make_golden --check: {argv[1]} {'differs from' if problems else 'matches'} what this script makes")
    return 1 if problems else 0
  if len(argv) < 1 or argv[0].startswith("-"):
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2
  out_dir = argv[0]
  only = argv[2:] if len(argv) > 2 and argv[1] == "--only" else None
  names = [c.name for c in CASES]
  if len(set(names)) != len(names):
    print("make_golden: duplicate case names", file=sys.stderr)
    return 1
  if only:
    unknown = sorted(set(only) - set(names))
    if unknown:
      print(f"make_golden: unknown case(s) {', '.join(unknown)}", file=sys.stderr)
      return 2
  os.makedirs(out_dir, exist_ok=True)
  import attnax, jax, flax  # noqa: E401
  print(f"make_golden: attnax {attnax.__version__ if hasattr(attnax, '__version__') else '?'}, jax {jax.__version__}, "
        f"flax {flax.__version__}, numpy {np.__version__}, backend {jax.default_backend()}")
  failed = []
  for c in CASES:
    if only and c.name not in only:
      continue
    try:
      write_case(out_dir, c)
      print(f"ok   {c.name}")
    except model_dir.OutputError as e:
      print(f"FAIL {c.name}: {e}", file=sys.stderr)
      failed.append(c.name)
    except Exception:
      print(f"FAIL {c.name}:", file=sys.stderr)
      traceback.print_exc()
      failed.append(c.name)
  stale = sorted(n for n in os.listdir(out_dir)
                 if os.path.isdir(os.path.join(out_dir, n)) and not n.startswith(".") and n not in names)
  if stale:
    print(f"make_golden: note: {out_dir} also holds folders not made here: {', '.join(stale)}", file=sys.stderr)
  if failed:
    print(f"make_golden: {len(failed)} case(s) FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1
  print(f"make_golden: wrote {len(CASES) if not only else len(only)} cases to {out_dir}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
