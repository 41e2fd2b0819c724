"""The facts behind scripts/bench-llm's quant section (issue 23): what ours holds, and the bounds.

    held = parse_weights(stderr)      # ours' `weights (--weights MODE): ...` line, or None
    bound = decode_bound(held_bytes, kv_bytes_per_token, context, stream_gbs)   # tokens/s
    peak = int8_peak(per_cycle=None)  # the theoretical VNNI peak of one core, with its sources

`attnax generate` prints, on stderr,
    weights (--weights native): q4_1 61.2 MB, q8_0 28.3 MB, f32 vectors 0.1 MB on rank 0; held per rank 89.6 MB, 46.1 MB
parse_weights returns {"mode": "native", "rank0": {"q4_1": 61.2e6, ...}, "held_per_rank": [89.6e6, 46.1e6]}
(bytes; MB = 10^6 bytes, kB/GB likewise, KiB/MiB/GiB binary).

The decode bound is bytes per token / streaming bandwidth: every weight rank 0 holds at np 1 read
once (the tied table once, as the LM head), plus K and V of the cached tokens at the mean context
of the decode (float32, the file's layers x KV heads x head size, which llama_bench.py reports).

The integer dot-product peak is theoretical, never measured: instructions per cycle x int8
multiply-accumulates per instruction x clock. AVX-512 VNNI's vpdpbusd on a zmm register does 64
(u8 x s8); AVX-VNNI's ymm form 32. Per cycle: assumed 2 on Intel (Xeons with two 512-bit FMA
ports, 0 and 5) and 1 elsewhere (Zen 4 runs a zmm as two 256-bit halves), unless given. The clock
is lscpu's "CPU max MHz", else /proc/cpuinfo's "cpu MHz" (a VM often shows only the base clock).
Standard library only: bench-llm runs under the system python3.
"""
import os
import re
import subprocess

WEIGHTS_RE = re.compile(r"weights \(--weights (\w+)\): (.*?) on rank 0; held per rank (.*)$", re.M)
AMOUNT_RE = re.compile(r"\s*(.*?)\s*([\d.]+) (B|kB|MB|GB|KiB|MiB|GiB)\b")
UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def parse_weights(stderr):
  """Ours' weights line as bytes: the weight types rank 0 holds and the total each rank holds."""
  m = WEIGHTS_RE.search(stderr)
  if not m:
    return None
  rank0 = {}
  for part in m.group(2).split(","):
    if (a := AMOUNT_RE.fullmatch(part)):
      rank0[a.group(1)] = float(a.group(2)) * UNITS[a.group(3)]
  held = [float(a.group(2)) * UNITS[a.group(3)] for part in m.group(3).split(",") if (a := AMOUNT_RE.fullmatch(part))]
  return {"mode": m.group(1), "rank0": rank0, "held_per_rank": held} if held else None


def decode_bound(held_bytes, kv_bytes_per_token, context, stream_gbs):
  """Tokens/s if a decode step only streamed the weights and the K/V cache at `context` tokens."""
  return stream_gbs * 1e9 / (held_bytes + kv_bytes_per_token * context)


def _lscpu():
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
  except OSError:
    return {}
  return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def _cpuinfo_mhz():
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("cpu MHz"):
          return float(line.split(":", 1)[1])
  except (OSError, ValueError):
    pass
  return None


def int8_peak(per_cycle=None, threads=2):
  """The theoretical VNNI peak: a dict with gmacs_per_core and a `text` line saying how it was made."""
  info = _lscpu()
  flags = set(info.get("Flags", "").split())
  if "avx512_vnni" in flags:
    macs, insn = 64, "vpdpbusd zmm (AVX-512 VNNI)"
  elif "avx_vnni" in flags:
    macs, insn = 32, "vpdpbusd ymm (AVX-VNNI)"
  else:
    return {"gmacs_per_core": None, "text": "integer dot-product peak: no VNNI in lscpu's flags, none stated"}
  assumed = per_cycle is None
  if assumed:
    per_cycle = 2 if info.get("Vendor ID") == "GenuineIntel" else 1
  if info.get("CPU max MHz"):
    mhz, clock = float(info["CPU max MHz"]), "lscpu's max MHz"
  else:
    mhz, clock = _cpuinfo_mhz(), "/proc/cpuinfo's cpu MHz: lscpu shows no max MHz, so a base clock; turbo is higher"
  if not mhz:
    return {"gmacs_per_core": None, "text": f"integer dot-product peak: {insn}, but no clock rate found"}
  gmacs = per_cycle * macs * mhz / 1000
  amx = "present, not counted here" if "amx_int8" in flags else "not in lscpu's flags"
  text = (f"integer dot-product peak (theoretical, not measured): {per_cycle:g} {insn} per cycle "
          f"({'assumed; --vnni-per-cycle sets it' if assumed else '--vnni-per-cycle'}) x {macs} int8 MACs x "
          f"{mhz / 1000:.2f} GHz ({clock}) = {gmacs:.0f} GMAC/s = {2 * gmacs / 1000:.2f} int8 TOPS per core, "
          f"{2 * gmacs * threads / 1000:.2f} at {threads} threads; AMX: {amx}")
  return {"gmacs_per_core": gmacs, "per_cycle": per_cycle, "macs": macs, "ghz": mhz / 1000, "clock": clock,
          "cores": os.cpu_count(), "text": text}
