"""Random attnax 0.2.0 block cases in the golden-case format, computed by attnax itself (JAX).

usage: random_cases.py N SEED OUT_DIR

Each case draws an encoder or decoder stack with random heads / KV heads / head size, attention
backend and block size, chunk, norms, activations, RoPE, attention_window, score mods, masks and
position ids, runs attnax on a random input and writes config.json, model.safetensors,
io.safetensors and meta.json (atol = rtol = 2e-4) to OUT_DIR/cNNN_*. Combinations attnax itself
refuses are skipped. `attnax golden OUT_DIR/*/` must pass them at every layout.
"""
import json, os, struct, sys, random
import numpy as np, jax, jax.numpy as jnp, flax.nnx as nnx
from attnax import EncoderBlock, DecoderBlock, AttentionType
from attnax.kernels.score_mods import alibi_mod, causal_mod, sliding_window_mod, prefix_lm_mod, document_mask_mod, additive_bias_mod
from attnax.kernels import compose_score_mods

def write_st(path, tensors):
    hdr = {}; off = 0; blobs = []
    for n in sorted(tensors):
        a = np.ascontiguousarray(tensors[n]); dt = {np.float32: "F32", np.int32: "I32", np.uint8: "U8"}[a.dtype.type]
        hdr[n] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}; off += a.nbytes; blobs.append(a.tobytes())
    h = json.dumps(hdr).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]

def flat_params(module, prefix):
    out = {}
    st = nnx.state(module, nnx.Param)
    for path, v in nnx.to_flat_state(st):
        name = prefix + "." + ".".join(str(p) for p in path)
        out[name] = np.asarray(v[...], dtype=np.float32)
    return out

def gen(idx, rng):
    block = rng.choice(["encoder", "decoder"])
    heads = rng.choice([1, 2, 3, 4, 6, 8])
    hd = rng.choice([4, 6, 8, 16])
    d = heads * hd
    kv = rng.choice([h for h in range(1, heads + 1) if heads % h == 0])
    att = rng.choice(["standard", "memory_efficient", "flash", "pallas_flash", "linear", "lite"])
    bs = rng.choice([3, 4, 5, 7, 16, 512])
    chunk = rng.choice([2, 4, 8])
    seq = rng.choice([8, 12, 16]) if att == "linear" else rng.randint(5, 23)
    if att == "linear": seq = chunk * rng.randint(1, 4)
    seq_kv = seq if att == "linear" else rng.randint(3, 15)
    use_rope = hd % 2 == 0 and rng.random() < 0.4
    window = rng.choice([None, None, 2, 4]) if att not in ("linear", "lite") else None
    mods = []
    if att not in ("linear", "lite"):
        for m in rng.sample(["alibi", "causal", "swin", "prefix", "doc", "bias"], rng.randint(0, 2)):
            mods.append(m)
    batch = rng.randint(1, 3)
    cfg = dict(block=block, num_layers=rng.choice([1, 1, 2]), d_model=d, num_heads=heads, d_ff=rng.choice([8, 24, 40]),
               dropout_rate=0.0, pre_norm=rng.random() < 0.6, attention_type=att, attention_block_size=bs,
               linear_attention_chunk_size=chunk, norm_type=rng.choice(["layer", "rms"]),
               ff_activation=rng.choice(["gelu", "relu", "swiglu", "geglu"]), num_kv_heads=kv if kv != heads or rng.random() < 0.5 else None,
               attention_window=window, use_rope=use_rope, rope_base=rng.choice([10000.0, 500.0]), rope_max_positions=64, score_mods=[])
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
            # blocked backends add the whole bias to each block: only valid when it fits one block
            b = np.random.default_rng(idx).standard_normal((1, heads, seq, seq)).astype(np.float32)
            if att != "standard" and seq > bs: continue
            io["attn_bias"] = b
            specs.append({"type": "additive_bias", "tensor": "attn_bias"}); fns.append(additive_bias_mod(jnp.array(b)))
    cfg["score_mods"] = specs
    if block == "decoder" and any(s["type"] == "document_mask" for s in specs): pass
    kw = dict(d_model=d, num_heads=heads, d_ff=cfg["d_ff"], dropout_rate=0.0, pre_norm=cfg["pre_norm"],
              attention_type=AttentionType(att), attention_block_size=bs, linear_attention_chunk_size=chunk,
              norm_type=cfg["norm_type"], ff_activation=cfg["ff_activation"], num_kv_heads=cfg["num_kv_heads"],
              attention_window=window, score_mod=compose_score_mods(*fns) if fns else None, use_rope=use_rope,
              rope_base=cfg["rope_base"], rope_max_positions=64)
    Cls = EncoderBlock if block == "encoder" else DecoderBlock
    layers = [Cls(nnx.Rngs(idx * 10 + i), **kw) for i in range(cfg["num_layers"])]
    params = {}
    for i, l in enumerate(layers): params.update(flat_params(l, f"layers.{i}"))
    nr = np.random.default_rng(idx)
    x = nr.standard_normal((batch, seq, d)).astype(np.float32)
    io["x"] = x
    kwargs = {}
    mk = nr.random() < 0.5
    if block == "encoder":
        if mk:
            m = (nr.random((batch, 1, 1 if nr.random() < 0.5 else seq, seq)) < 0.8).astype(np.uint8); io["mask"] = m; kwargs["mask"] = jnp.array(m, bool)
        if use_rope and nr.random() < 0.5:
            p = nr.integers(0, 60, (batch, seq)).astype(np.int32); io["position_ids"] = p; kwargs["position_ids"] = jnp.array(p)
    else:
        e = nr.standard_normal((batch, seq_kv, d)).astype(np.float32); io["encoder_output"] = e; kwargs["encoder_output"] = jnp.array(e)
        if mk:
            m = (nr.random((batch, 1, 1, seq)) < 0.8).astype(np.uint8); io["self_mask"] = m; kwargs["self_mask"] = jnp.array(m, bool)
            cm = (nr.random((batch, 1, 1, seq_kv)) < 0.8).astype(np.uint8); io["cross_mask"] = cm; kwargs["cross_mask"] = jnp.array(cm, bool)
    y = jnp.array(x)
    for l in layers: y = l(y, deterministic=True, **kwargs)
    io["y"] = np.asarray(y, np.float32)
    d_ = os.path.join(sys.argv[3], f"c{idx:03d}_{block}_{att}")
    os.makedirs(d_, exist_ok=True)
    json.dump(cfg, open(d_ + "/config.json", "w"))
    json.dump({"description": "random", "atol": 2e-4, "rtol": 2e-4, "reference": "attnax"}, open(d_ + "/meta.json", "w"))
    write_st(d_ + "/model.safetensors", params); write_st(d_ + "/io.safetensors", io)

n = int(sys.argv[1]); rng = random.Random(int(sys.argv[2]))
for i in range(n):
    try: gen(i, rng)
    except Exception as ex: print(f"case {i}: attnax refuses it ({type(ex).__name__}); skipped", file=sys.stderr)
