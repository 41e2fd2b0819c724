#!/usr/bin/env python3
"""Times attnax 0.2.0 (Python/JAX, CPU) on the configs of `attnax bench`.

Same shapes, float32, dropout off (deterministic=True), random weights from nnx.Rngs(0).
Each config is jitted once (the compile is the warm-up), then timed with
block_until_ready() until at least --repeat calls ran and the median settled (the last
three medians within 1%), or --budget seconds of timed calls, or --max-repeat calls:
the same stop rule as `attnax bench`. Prints one JSON object per config on stdout
(the keys of `attnax bench --json` that apply), progress on stderr.

Threads: XLA's CPU client sizes its intra-op (Eigen) pool to the CPUs the process may run
on, so scripts/bench-peer pins this process with `taskset -c 0-(T-1)` and sets
XLA_FLAGS=--xla_cpu_multi_thread_eigen=true; nothing here changes threads.

decode: one new token after `seq - 1` cached tokens. attnax reads the cache length with
int(), so the cache cannot be a traced argument; the prefilled cache is closed over by the
jitted step (a constant of the compiled step), and every timed step sees the same
`seq - 1` cached tokens, as in `attnax bench`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import flax.nnx as nnx
import attnax
from attnax import AttentionType

PRESETS = ["enc-base", "enc-long", "dec-llama", "xdec", "decode"]


def spec(name: str, seq: int | None):
  """Block kwargs and shapes for a preset (mirrors BenchCase in Sources/launcher/Bench.swift)."""
  if name == "enc-base":
    s = dict(block="encoder", batch=1, seq=512, d_model=768, num_heads=12, d_ff=3072,
             attention_type=AttentionType.STANDARD, causal=False)
  elif name == "enc-long":
    s = dict(block="encoder", batch=1, seq=4096, d_model=512, num_heads=8, d_ff=2048,
             attention_type=AttentionType.FLASH, attention_block_size=512, causal=True)
  elif name in ("dec-llama", "decode"):
    s = dict(block="encoder", batch=1, seq=1024, d_model=1024, num_heads=16, d_ff=2816,
             attention_type=AttentionType.FLASH, attention_block_size=512, norm_type="rms",
             ff_activation="swiglu", num_kv_heads=4, use_rope=True, causal=True)
  elif name == "xdec":
    s = dict(block="decoder", batch=2, seq=256, encoder_seq=256, d_model=512, num_heads=8, d_ff=2048,
             attention_type=AttentionType.STANDARD, causal=True)
  else:
    raise SystemExit(f"unknown config {name!r} ({', '.join(PRESETS)})")
  s["decode"] = name == "decode"
  if seq:
    s["seq"] = seq
    if "encoder_seq" in s:
      s["encoder_seq"] = seq
  return s


def flops(s) -> float:
  """Matmul FLOPs of one forward (the formula of docs/BENCHMARKS.md)."""
  d, f, b = s["d_model"], s["d_ff"], s["batch"]
  dkv = (s.get("num_kv_heads") or s["num_heads"]) * (d // s["num_heads"])
  new = 1 if s["decode"] else s["seq"]
  past = s["seq"] - 1 if s["decode"] else 0
  rows = b * new
  total = 2 * rows * (2 * d * d + 2 * d * dkv)
  total += 2 * rows * d * f * (3 if s.get("ff_activation") in ("swiglu", "geglu") else 2)
  pairs = b * sum(past + i + 1 for i in range(new)) if s["causal"] else b * new * (past + new)
  total += 4 * d * pairs
  if s["block"] == "decoder":
    e = s["encoder_seq"]
    total += 2 * rows * 2 * d * d + 2 * b * e * 2 * d * dkv + 4 * d * b * new * e
  return float(total)


def build(s):
  kw = dict(d_model=s["d_model"], num_heads=s["num_heads"], d_ff=s["d_ff"], dropout_rate=0.0,
            attention_type=s["attention_type"], attention_block_size=s.get("attention_block_size", 512),
            norm_type=s.get("norm_type", "layer"), ff_activation=s.get("ff_activation", "gelu"),
            num_kv_heads=s.get("num_kv_heads"), use_rope=s.get("use_rope", False),
            rope_max_positions=max(8192, s["seq"]),
            score_mod=attnax.causal_mod() if s["causal"] else None)
  cls = attnax.DecoderBlock if s["block"] == "decoder" else attnax.EncoderBlock
  return cls(nnx.Rngs(0), **kw)


def make_call(s):
  """Returns (fn, args): a jitted forward and its arguments."""
  block = build(s)
  graphdef, state = nnx.split(block)
  key = jax.random.PRNGKey(1)
  b, d = s["batch"], s["d_model"]
  if s["decode"]:
    past = s["seq"] - 1
    kv = s.get("num_kv_heads") or s["num_heads"]
    cache = attnax.init_kv_layer_cache(b, kv, d // s["num_heads"], s["seq"], jnp.float32)
    x = jax.random.uniform(key, (b, s["seq"], d), jnp.float32, -1, 1)
    pos = jnp.broadcast_to(jnp.arange(past, dtype=jnp.int32)[None], (b, past))
    _, cache = block(x[:, :past], deterministic=True, position_ids=pos, self_attn_kv_cache=cache)
    step_pos = jnp.full((b, 1), past, jnp.int32)

    @jax.jit
    def step(state, x1):
      m = nnx.merge(graphdef, state)
      y, _ = m(x1, deterministic=True, position_ids=step_pos, self_attn_kv_cache=cache)
      return y

    return step, (state, x[:, past:])
  x = jax.random.uniform(key, (b, s["seq"], d), jnp.float32, -1, 1)
  if s["block"] == "decoder":
    e = jax.random.uniform(jax.random.PRNGKey(2), (b, s["encoder_seq"], d), jnp.float32, -1, 1)

    @jax.jit
    def fwd(state, x, e):
      return nnx.merge(graphdef, state)(x, encoder_output=e, deterministic=True)

    return fwd, (state, x, e)

  @jax.jit
  def fwd(state, x):
    return nnx.merge(graphdef, state)(x, deterministic=True)

  return fwd, (state, x)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--config", default="all", help="comma-separated presets, or all")
  ap.add_argument("--seq", type=int)
  ap.add_argument("--repeat", type=int, default=3)
  ap.add_argument("--max-repeat", type=int, default=30)
  ap.add_argument("--budget", type=float, default=20.0)
  a = ap.parse_args()
  names = PRESETS if a.config == "all" else a.config.split(",")
  for name in names:
    s = spec(name, a.seq)
    fn, args = make_call(s)
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))  # compile + first run = warm-up
    compile_s = time.perf_counter() - t0
    times, medians = [], []
    while True:
      t0 = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times.append(time.perf_counter() - t0)
      medians.append(statistics.median(times))
      n = len(times)
      settled = n >= 3 and all(abs(m - medians[-1]) <= 0.01 * medians[-1] for m in medians[-3:])
      if n >= a.max_repeat or (n >= a.repeat and (settled or sum(times) >= a.budget)):
        break
    med = statistics.median(times)
    out = {
      "config": name, "impl": "attnax-jax", "np": 1, "tp": 1, "cp": 1, "batch": s["batch"], "seq": s["seq"],
      "median_ms": med * 1e3, "min_ms": min(times) * 1e3, "iterations": len(times),
      "flops": flops(s), "gflops": flops(s) / med / 1e9,
      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
      "compile_plus_first_s": compile_s, "jax": jax.__version__, "attnax": attnax.__version__,
      "devices": str(jax.devices()),
    }
    print(f"peer {name}: median {med * 1e3:.3f} ms, min {min(times) * 1e3:.3f} ms over {len(times)}", file=sys.stderr)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
  main()
