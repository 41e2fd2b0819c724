"""Random attnax 0.2.0 block cases in the golden-case format, computed by attnax itself (JAX).

usage: random_cases.py N SEED OUT_DIR

Each case draws an encoder or decoder stack with random heads / KV heads / head size, attention
backend and block size, chunk, norms, activations, RoPE, attention_window, score mods, masks and
position ids, runs attnax on a random input and writes config.json, model.safetensors,
io.safetensors and meta.json (atol = rtol = 2e-4) to OUT_DIR/cNNN_*. `attnax golden OUT_DIR/*/`
must pass them at every layout.

Only combinations attnax 0.2.0 accepts are drawn, by construction:
- linear and lite attention take no score mod and no attention_window (attnax raises);
- linear attention needs seq_q == seq_kv (so decoders get an encoder output of the same length)
  and seq % chunk == 0;
- blocked backends (memory_efficient, flash, pallas_flash; on CPU all run attnax's blocked
  online softmax unless seq_q and seq_kv fit one block) slice the mask's query axis per block,
  so once seq_q exceeds the block size their masks get the full query axis; and they add an
  additive bias whole to every block, so additive_bias is drawn only when the sequence fits
  one block (or with standard attention);
- RoPE only with an even head size, positions inside the table (rope_max_positions 64).
So any exception is a bug: it is printed with the case's draw and the script exits 1. It
writes exactly N cases or fails.
"""
import json
import os
import random
import sys
import traceback

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np
import jax.numpy as jnp
import flax.nnx as nnx
from attnax import EncoderBlock, DecoderBlock, AttentionType
from attnax.kernels.score_mods import alibi_mod, causal_mod, sliding_window_mod, prefix_lm_mod, document_mask_mod, additive_bias_mod
from attnax.kernels import compose_score_mods

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pylib"))
import safetensors_io  # noqa: E402

BLOCKED = ("memory_efficient", "flash", "pallas_flash")
ROPE_MAX = 64


def flat_params(module, prefix):
    out = {}
    st = nnx.state(module, nnx.Param)
    for path, v in nnx.to_flat_state(st):
        name = prefix + "." + ".".join(str(p) for p in path)
        out[name] = np.asarray(v[...], dtype=np.float32)
    return out


def gen(idx, rng, out_dir, draw):
    """Draws case idx from rng (recording the draw in `draw` for error reports) and writes it."""
    block = rng.choice(["encoder", "decoder"])
    heads = rng.choice([1, 2, 3, 4, 6, 8])
    hd = rng.choice([4, 6, 8, 16])
    d = heads * hd
    kv = rng.choice([h for h in range(1, heads + 1) if heads % h == 0])
    att = rng.choice(["standard", "memory_efficient", "flash", "pallas_flash", "linear", "lite"])
    bs = rng.choice([3, 4, 5, 7, 16, 512])
    chunk = rng.choice([2, 4, 8])
    if att == "linear":
        seq = chunk * rng.randint(1, 4)
        seq_kv = seq  # linear cross-attention needs seq_q == seq_kv
    else:
        seq = rng.randint(5, 23)
        seq_kv = rng.randint(3, 15)
    use_rope = hd % 2 == 0 and rng.random() < 0.4
    softmax = att not in ("linear", "lite")  # only softmax backends take score mods and windows
    window = rng.choice([None, None, 2, 4]) if softmax else None
    # additive_bias (1, heads, seq, seq) is added whole to each block's scores: only valid on
    # standard attention or when the self-attention fits one block (attnax then runs standard).
    bias_ok = att == "standard" or (att in BLOCKED and seq <= bs)
    mod_pool = ["alibi", "causal", "swin", "prefix", "doc"] + (["bias"] if bias_ok else [])
    mods = rng.sample(mod_pool, rng.randint(0, 2)) if softmax else []
    batch = rng.randint(1, 3)
    cfg = dict(block=block, num_layers=rng.choice([1, 1, 2]), d_model=d, num_heads=heads, d_ff=rng.choice([8, 24, 40]),
               dropout_rate=0.0, pre_norm=rng.random() < 0.6, attention_type=att, attention_block_size=bs,
               linear_attention_chunk_size=chunk, norm_type=rng.choice(["layer", "rms"]),
               ff_activation=rng.choice(["gelu", "relu", "swiglu", "geglu"]), num_kv_heads=kv if kv != heads or rng.random() < 0.5 else None,
               attention_window=window, use_rope=use_rope, rope_base=rng.choice([10000.0, 500.0]), rope_max_positions=ROPE_MAX, score_mods=[])
    draw.update(cfg, seq=seq, seq_kv=seq_kv, batch=batch, mods=mods)
    io = {}
    specs = []; fns = []
    for m in mods:
        if m == "alibi": specs.append({"type": "alibi"}); fns.append(alibi_mod(heads))
        if m == "causal": specs.append({"type": "causal"}); fns.append(causal_mod())
        if m == "swin":
            w = rng.randint(1, 5); c = rng.random() < 0.5
            specs.append({"type": "sliding_window", "window_size": w, "causal": c}); fns.append(sliding_window_mod(w, causal=c))
        if m == "prefix":
            p = [rng.randint(0, seq) for _ in range(batch)]
            specs.append({"type": "prefix_lm", "prefix_lengths": p}); fns.append(prefix_lm_mod(jnp.array(p)))
        if m == "doc":
            ids = [sorted(rng.randint(0, 2) for _ in range(seq)) for _ in range(batch)]
            specs.append({"type": "document_mask", "document_ids": ids}); fns.append(document_mask_mod(jnp.array(ids)))
        if m == "bias":
            b = np.random.default_rng(idx).standard_normal((1, heads, seq, seq)).astype(np.float32)
            io["attn_bias"] = b
            specs.append({"type": "additive_bias", "tensor": "attn_bias"}); fns.append(additive_bias_mod(jnp.array(b)))
    cfg["score_mods"] = specs
    kw = dict(d_model=d, num_heads=heads, d_ff=cfg["d_ff"], dropout_rate=0.0, pre_norm=cfg["pre_norm"],
              attention_type=AttentionType(att), attention_block_size=bs, linear_attention_chunk_size=chunk,
              norm_type=cfg["norm_type"], ff_activation=cfg["ff_activation"], num_kv_heads=cfg["num_kv_heads"],
              attention_window=window, score_mod=compose_score_mods(*fns) if fns else None, use_rope=use_rope,
              rope_base=cfg["rope_base"], rope_max_positions=ROPE_MAX)
    Cls = EncoderBlock if block == "encoder" else DecoderBlock
    layers = [Cls(nnx.Rngs(idx * 10 + i), **kw) for i in range(cfg["num_layers"])]
    params = {}
    for i, l in enumerate(layers): params.update(flat_params(l, f"layers.{i}"))
    nr = np.random.default_rng(idx)
    x = nr.standard_normal((batch, seq, d)).astype(np.float32)
    io["x"] = x
    kwargs = {}
    mk = nr.random() < 0.5
    # blocked backends slice the mask's query axis per query block: give it in full then
    full_q = att in BLOCKED and seq > bs
    if block == "encoder":
        if mk:
            q_dim = seq if full_q or nr.random() >= 0.5 else 1
            m = (nr.random((batch, 1, q_dim, seq)) < 0.8).astype(np.uint8); io["mask"] = m; kwargs["mask"] = jnp.array(m, bool)
        if use_rope and nr.random() < 0.5:
            p = nr.integers(0, ROPE_MAX - 4, (batch, seq)).astype(np.int32); io["position_ids"] = p; kwargs["position_ids"] = jnp.array(p)
    else:
        e = nr.standard_normal((batch, seq_kv, d)).astype(np.float32); io["encoder_output"] = e; kwargs["encoder_output"] = jnp.array(e)
        if mk:
            q_dim = seq if full_q else 1
            m = np.broadcast_to(nr.random((batch, 1, 1, seq)) < 0.8, (batch, 1, q_dim, seq)).astype(np.uint8)
            io["self_mask"] = m; kwargs["self_mask"] = jnp.array(m, bool)
            cm = np.broadcast_to(nr.random((batch, 1, 1, seq_kv)) < 0.8, (batch, 1, q_dim, seq_kv)).astype(np.uint8)
            io["cross_mask"] = cm; kwargs["cross_mask"] = jnp.array(cm, bool)
    y = jnp.array(x)
    for l in layers: y = l(y, deterministic=True, **kwargs)
    io["y"] = np.asarray(y, np.float32)
    if not np.all(np.isfinite(io["y"])):
        raise RuntimeError("attnax's output holds non-finite values")
    d_ = os.path.join(out_dir, f"c{idx:03d}_{block}_{att}")
    os.makedirs(d_, exist_ok=True)
    with open(d_ + "/config.json", "w") as f: json.dump(cfg, f)
    with open(d_ + "/meta.json", "w") as f: json.dump({"description": "random", "atol": 2e-4, "rtol": 2e-4, "reference": "attnax"}, f)
    safetensors_io.write(d_ + "/model.safetensors", params); safetensors_io.write(d_ + "/io.safetensors", io)


def main(argv):
    if len(argv) != 3:
        print("usage: random_cases.py N SEED OUT_DIR", file=sys.stderr)
        return 2
    n = int(argv[0]); rng = random.Random(int(argv[1])); out_dir = argv[2]
    os.makedirs(out_dir, exist_ok=True)
    for i in range(n):
        draw = {}
        try:
            gen(i, rng, out_dir, draw)
        except Exception:
            print(f"random_cases: case {i} (seed {argv[1]}) FAILED; the draw was {json.dumps(draw, default=str)}", file=sys.stderr)
            traceback.print_exc()
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
