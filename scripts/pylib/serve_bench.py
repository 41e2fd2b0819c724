"""The measurements of scripts/bench-serve: streaming chat clients against `attnax serve` and against
llama.cpp's OpenAI server (llama_cpp.server) on the same GGUF, in interleaved rounds.

    python serve_bench.py --bin BIN --model GGUF --peer-python PY [--clients 1,4,16] [--requests 32]
        [--max-tokens 64] [--rounds 2] [--threads 2] [--np 1] [--engines ours,peer] [--out DIR]

A run, per round and per engine (ours then the peer in odd rounds, the peer first in even ones):
start the server (each alone on the machine: an idle MPI job polls and would take the other's
cores), one untimed warm-up request, then for each --clients C: --requests requests (PROMPTS in
turn: prompts asking for long answers, temperature 0, max_tokens --max-tokens, stream with
stream_options.include_usage) sent by C client threads, each taking the next request when its
last one ends. Measured per C: requests/s and generated tokens/s over the wall time of the
requests, time to first token (request sent -> first content chunk) and inter-token latency (the
gaps between a request's content chunks), p50 and p99. Generated tokens: each stream's usage when
it sends one, else its content chunks (llama_cpp.server 0.3.36 ignores stream_options; it streams
one chunk per token). Ours: `attnax serve` at np 1 with OPENBLAS_NUM_THREADS = --threads, or at
--np N under scripts/mpirun with --tp N (threads per rank: --threads / N). Peer:
scripts/reference/llama_server.py (llama_cpp.server, use_extra_bufts false) with n_threads and
n_threads_batch = --threads, n_ctx 2048, float32 KV cache, no flash attention, interrupt_requests
false (its default lets a new request cut the stream in progress short, ending it with no
finish_reason); it serves one request at a time (no batching), and it reuses the KV cache of the
previous prompt's common prefix. A stream that ends without a finish_reason counts as an error.

Prints a header (machine, threads, weights, versions, load average) and a markdown table for
docs/BENCHMARKS.md: the best round per engine and C, and ours/peer per-round ratios. Raw
per-request records go to DIR/bench-serve-<time>.jsonl. Never asserts a speed.
"""
import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpx  # noqa: E402

from serve_process import ROOT, Server, ServerFailed, free_port  # noqa: E402

PROMPTS = [
    "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle.",
    "Explain in detail how a car engine works, step by step.",
    "Describe the water cycle in detail for a school textbook.",
    "Write a detailed essay about the history of the printing press.",
    "Explain how the internet works, from cables to web pages, in detail.",
    "Write a long letter to a friend describing a trip to the mountains.",
    "Describe, step by step, how to bake bread at home.",
    "Explain the theory of evolution in detail with examples.",
    "Write a detailed guide to starting a vegetable garden.",
    "Describe the life cycle of a star in detail.",
    "Write a long story about a robot who wants to become a painter.",
    "Explain how vaccines work in the human body, in detail.",
    "Write a detailed review of an imaginary science fiction movie.",
    "Describe the causes and effects of the industrial revolution in detail.",
    "Explain how photosynthesis works, step by step, in detail.",
    "Write a long story about two children exploring an old castle.",
]


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def one_request(http, url, model, prompt, max_tokens):
    """One streamed chat request: {ttft, gaps, tokens, counted_by, error}."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    times, usage, error, finish = [], None, None, None
    try:
        with http.stream("POST", url + "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                return {"error": f"HTTP {r.status_code}: {r.read()[:200]!r}"}
            for line in r.iter_lines():
                if not line.startswith("data: ") or line.strip() == "data: [DONE]":
                    continue
                obj = json.loads(line[6:])
                if "error" in obj:
                    error = str(obj["error"])[:200]
                if obj.get("usage"):
                    usage = obj["usage"].get("completion_tokens")
                if any((c.get("delta") or {}).get("content") for c in obj.get("choices") or []):
                    times.append(time.perf_counter())
                finish = next((c["finish_reason"] for c in obj.get("choices") or [] if c.get("finish_reason")), finish)
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        error = f"{type(e).__name__}: {e}"
    end = time.perf_counter()
    if error is None and finish is None:
        error = f"the stream ended without a finish_reason after {len(times)} content chunks"
    return {"start": t0, "end": end, "finish_reason": finish, "ttft": (times[0] - t0) if times else None,
            "gaps": [b - a for a, b in zip(times, times[1:])], "tokens": usage if usage is not None else len(times),
            "counted_by": "usage" if usage is not None else "chunks", "error": error}


def run_load(url, model, clients, requests, max_tokens):
    """`requests` requests from `clients` threads; the records and the wall time."""
    work = queue.Queue()
    for i in range(requests):
        work.put(PROMPTS[i % len(PROMPTS)])
    records, lock = [], threading.Lock()

    def client():
        with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as http:
            while True:
                try:
                    prompt = work.get_nowait()
                except queue.Empty:
                    return
                rec = one_request(http, url, model, prompt, max_tokens)
                with lock:
                    records.append(rec)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records, time.perf_counter() - t0


def summarize(records, wall):
    ok = [r for r in records if not r.get("error")]
    tokens = sum(r["tokens"] for r in ok)
    gaps = [g for r in ok for g in r["gaps"]]
    ttft = [r["ttft"] for r in ok if r["ttft"] is not None]
    return {"requests": len(records), "errors": len(records) - len(ok), "wall_s": wall,
            "req_s": len(ok) / wall, "tok_s": tokens / wall, "tokens": tokens,
            "tokens_per_request": tokens / max(1, len(ok)),
            "counted_by": sorted({r["counted_by"] for r in ok}),
            "ttft_p50_ms": 1e3 * percentile(ttft, 50), "ttft_p99_ms": 1e3 * percentile(ttft, 99),
            "itl_p50_ms": 1e3 * percentile(gaps, 50), "itl_p99_ms": 1e3 * percentile(gaps, 99)}


def start_ours(args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(max(1, args.threads // args.np)))
    extra = ["--max-batch", "16", "--context", "2048", "--weights", args.weights] + \
        (["--tp", str(args.np)] if args.np > 1 else [])
    return Server.attnax(args.bin, args.model, np=args.np, args=extra, env=env, name=f"attnax serve (np {args.np})")


def start_peer(args):
    port = free_port()
    cmd = [args.peer_python, os.path.join(ROOT, "scripts", "reference", "llama_server.py"), "--model", args.model,
           "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(args.threads),
           "--n_threads_batch", str(args.threads), "--n_ctx", "2048", "--type_k", "0", "--type_v", "0",
           "--flash_attn", "false", "--verbose", "false", "--interrupt_requests", "false"]

    def ready(url):
        try:
            return httpx.get(url + "/v1/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return Server(cmd, url=f"http://127.0.0.1:{port}", ready=ready, name="llama_cpp.server")


def model_id(url):
    try:
        return httpx.get(url + "/v1/models", timeout=10).json()["data"][0]["id"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError):
        return "default"


def machine_facts(args):
    facts = {"cpu": "unknown", "nproc": os.cpu_count(), "threads": args.threads}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                facts["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        import gguf_check
        types = {}
        for _, qtype, n in gguf_check.check(args.model):
            types[qtype.name] = types.get(qtype.name, 0) + n
        facts["weight_types"] = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(types.items(), key=lambda kv: -kv[1]))
    except Exception as e:  # noqa: BLE001 (a header line, not a measurement)
        facts["weight_types"] = f"unknown ({e})"
    facts["peer"] = subprocess.run([args.peer_python, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
                                   capture_output=True, text=True).stdout.strip() if args.peer_python else ""
    if args.bin:
        import hashlib
        with open(args.bin, "rb") as f:
            facts["bin"] = f"{args.bin_label or args.bin} (sha256 {hashlib.sha256(f.read()).hexdigest()[:12]})"
    return facts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin")
    ap.add_argument("--bin-label", help="where --bin was copied from, for the header")
    ap.add_argument("--model", required=True)
    ap.add_argument("--peer-python")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--np", type=int, default=1)
    ap.add_argument("--weights", default="native")
    ap.add_argument("--engines", default="ours,peer")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    engines = args.engines.split(",")
    starters = {"ours": start_ours, "peer": start_peer}
    facts = machine_facts(args)
    os.makedirs(args.out, exist_ok=True)
    raw_path = os.path.join(args.out, time.strftime("bench-serve-%Y%m%d-%H%M%S.jsonl"))
    ours_name = f"attnax serve np {args.np}" + (f" (tp {args.np})" if args.np > 1 else "") + \
        f" x {max(1, args.threads // args.np)} thread(s), --weights {args.weights}"
    print(f"machine: {facts['cpu']}, {facts['nproc']} cores; load average {os.getloadavg()[0]:.2f} at start")
    print(f"model: {os.path.basename(args.model)} ({facts['weight_types']})")
    if "ours" in engines:
        print(f"ours: {ours_name}, binary {facts.get('bin', '-')}")
    if "peer" in engines:
        print(f"peer: llama_cpp.server (llama-cpp-python {facts['peer']}) x {args.threads} thread(s), f32 KV, "
              "use_extra_bufts false, interrupt_requests false")
    print(f"load: {args.requests} streamed chat requests per client count, max_tokens {args.max_tokens}, "
          f"temperature 0; clients {args.clients}; {args.rounds} round(s), engines interleaved", flush=True)
    results = {}  # (engine, clients) -> [summary per round]
    with open(raw_path, "w") as raw:
        for rnd in range(1, args.rounds + 1):
            order = engines if rnd % 2 else list(reversed(engines))
            for engine in order:
                try:
                    server = starters[engine](args)
                except (ServerFailed, OSError) as e:
                    print(f"round {rnd} {engine}: {e}", flush=True)
                    continue
                model = model_id(server.url)
                with httpx.Client(timeout=600) as http:
                    one_request(http, server.url, model, PROMPTS[0], 8)  # warm-up: page the weights in
                for c in clients:
                    records, wall = run_load(server.url, model, c, args.requests, args.max_tokens)
                    s = summarize(records, wall)
                    results.setdefault((engine, c), []).append(s)
                    raw.write(json.dumps({"round": rnd, "engine": engine, "clients": c, "summary": s,
                                          "records": records}) + "\n")
                    errs = [r["error"] for r in records if r.get("error")]
                    print(f"round {rnd} {engine:4s} {c:2d} clients: {s['req_s']:.2f} req/s, {s['tok_s']:.1f} tok/s, "
                          f"TTFT p50 {s['ttft_p50_ms']:.0f} ms, ITL p50 {s['itl_p50_ms']:.1f} ms, "
                          f"{s['tokens_per_request']:.1f} tokens/request"
                          + (f"; {len(errs)} errors: {errs[0]}" if errs else ""), flush=True)
                server.stop()
    print(f"load average {os.getloadavg()[0]:.2f} at the end; raw records: {os.path.relpath(raw_path, ROOT)}\n")
    print_table(results, engines, clients, ours_name)
    return 0


def print_table(results, engines, clients, ours_name):
    names = {"ours": "attnax serve", "peer": "llama_cpp.server"}
    print("| clients | engine | req/s | gen tokens/s | tokens/req | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in clients:
        for e in engines:
            rounds = results.get((e, c))
            if not rounds:
                print(f"| {c} | {names[e]} | (no run) | | | | | | |")
                continue
            b = max(rounds, key=lambda s: s["tok_s"])
            print(f"| {c} | {names[e]} | {b['req_s']:.2f} | {b['tok_s']:.1f} | {b['tokens_per_request']:.1f} | "
                  f"{b['ttft_p50_ms']:.0f} | {b['ttft_p99_ms']:.0f} | {b['itl_p50_ms']:.1f} | {b['itl_p99_ms']:.1f} |")
    if "ours" in engines and "peer" in engines:
        print("\n| clients | ours/peer tokens/s (best rounds) | per-round ratios median [min-max] | ours/peer TTFT p50 |")
        print("| ---: | ---: | ---: | ---: |")
        for c in clients:
            o, p = results.get(("ours", c), []), results.get(("peer", c), [])
            if not o or not p:
                continue
            per = [a["tok_s"] / b["tok_s"] for a, b in zip(o, p) if b["tok_s"] > 0]
            bo, bp = max(s["tok_s"] for s in o), max(s["tok_s"] for s in p)
            tt = statistics.median(s["ttft_p50_ms"] for s in o) / statistics.median(s["ttft_p50_ms"] for s in p)
            print(f"| {c} | {bo / bp:.2f} | {statistics.median(per):.2f} [{min(per):.2f}-{max(per):.2f}] | {tt:.2f} |")
    print(f"\nours: {ours_name}. Best round by tokens/s; tokens from each stream's usage (ours) or its content "
          "chunks (llama_cpp.server ignores stream_options).")


if __name__ == "__main__":
    sys.exit(main())
