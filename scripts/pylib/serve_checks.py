"""The checks of scripts/test-serve: `attnax serve` against its contract, at np 1, tp 2 and pp 2.

    python serve_checks.py --bin BIN --model GGUF [--layouts np1,tp2]

Per layout one server (--api-key, --context 256, --max-body-bytes 16384) serves every check, the
SIGTERM drain last; at tp 2 a second one is started to have a rank SIGKILLed. The checks, each one
line (serve_client.Report):
  health, models   GET /health without a key -> 200 {"status": "ok"}; GET /v1/models lists a model
  chat = generate  the `openai` client, temperature 0, max_tokens 24: non-streaming and streaming
                   text equal to `attnax generate --chat ... --max-new-tokens 24` at the same layout
                   (quantized near ties make layouts differ, so never across layouts); usage
                   (prompt_tokens = generate's prefill, total = prompt + completion, length ->
                   completion = max_tokens); finish_reason length/stop as generate ended
  completions      /v1/completions, no max_tokens (default 16) = `attnax generate --prompt ... 16`
  SSE framing      raw stream: `data: ` lines of chat.completion.chunk objects, one usage chunk
                   (stream_options.include_usage), `data: [DONE]` last
  errors (curl)    malformed JSON, wrong types, bad max_tokens, empty messages, n 2, 5 stops, unknown
                   role, prompts over --context (code context_length_exceeded), a body over
                   --max-body-bytes (413), missing and wrong keys (401), unknown route (404), wrong
                   method (405), embeddings on a decoder (400): each status with the OpenAI error
                   shape, and a normal request answered after each
  metrics          /metrics has the seven attnax_ metrics; requests and token counters moved
  concurrency      16 clients at once (half streaming), distinct greedy prompts: each answer
                   (text, finish_reason, usage) equal to the same request sent alone
  disconnect       a stream closed after 3 chunks beside another stream: the other completes, a
                   follow-up works, /metrics queue and running gauges return to 0
  SIGTERM drain    SIGTERM (np 1: the server; tp 2: rank 0) during a stream: the stream completes
                   with the text it has alone, /health and a new request get 503 or a refused
                   connection, exit status 0, every rank gone
  killed rank      tp 2: SIGKILL rank 1 during a stream: the stream ends in an error (HTTP error,
                   error event or closed without finish_reason/[DONE]), mpirun exits non-zero
                   within --timeout + 10 s, no rank left
  bad flags        np 1: a missing model, --max-batch 0, --weights bogus: exit 2, one `error:` line
Closing line "serve: N passed, M failed"; exit status 1 if any failed.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_client as sc  # noqa: E402
from serve_process import ROOT, Server, ServerFailed, alive  # noqa: E402

KEY = "test-serve-key"
CONTEXT = 256
MAX_BODY = 16384
STEPS = 24
KILL_TIMEOUT = 5
# Prompts whose greedy answers end by length and by end-of-turn within STEPS (SmolLM2 Q4_1).
GENERATE_CASES = [(None, "What is the capital of France?"), (None, "What is 2+2?"),
                  ("You are a pirate. Answer like one.", "Hi"), (None, "Write a haiku about the sea.")]
COMPLETION_PROMPT = "The three primary colors are"
CONCURRENT_PROMPTS = [
    "What is the capital of France?", "Name three fruits.", "What is 2+2?", "Say hello in Spanish.",
    "Who wrote Hamlet?", "What color is the sky?", "Give me a synonym for happy.", "What is water made of?",
    "Name a planet.", "How many legs does a spider have?", "What is the opposite of hot?", "Count to five.",
    "What do bees make?", "Name a musical instrument.", "What is the largest ocean?", "Tell me a fun fact."]
LONG_PROMPT = "Write a long story about a dragon who learns to fly."
LONG_STEPS = 180  # prompt (~40 tokens) + 180 < CONTEXT


def messages(system, user):
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def layout_flags(np, pp=False):
    """The layout flags of a server or generate run: tp np, or with `pp` np pipeline stages."""
    return [] if np == 1 else (["--pp", str(np)] if pp else ["--tp", str(np)])


def run_generate(binary, model, np, extra, pp=False):
    """`attnax generate` at the layout: (its text without the one newline it ends with, prefill
    tokens, decode tokens) or an error string."""
    cmd = ([binary] if np == 1 else [os.path.join(ROOT, "scripts", "mpirun"), "-np", str(np), binary])
    out = subprocess.run(cmd + ["generate", "--model", model] + extra + layout_flags(np, pp),
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return f"attnax generate exit {out.returncode}: {out.stderr.strip()[-300:]}"
    m = sc.PREFILL.search(out.stderr)
    if not m:
        return f"no 'prefill: N tokens ... decode: M tokens' line in generate's stderr: {out.stderr.strip()[-300:]}"
    text = out.stdout[:-1] if out.stdout.endswith("\n") else out.stdout
    return text, int(m.group(1)), int(m.group(2))


def check_generate(r, api, binary, model, np, label, pp=False):
    """chat = generate for each case, non-streaming and streaming; completions = generate --prompt."""
    for system, user in GENERATE_CASES[:2] if pp else GENERATE_CASES:  # pp 2: two (the suite's time)
        ref = run_generate(binary, model, np, ["--chat", user, "--max-new-tokens", str(STEPS)] +
                           (["--system", system] if system else []), pp)
        name = f"{label} chat = generate: {user!r}" + (" (with a system message)" if system else "")
        if isinstance(ref, str):
            r.check(name, False, ref)
            continue
        text, prefill, decode = ref
        finish = "length" if decode + 1 >= STEPS else "stop"
        why = []
        for stream in (False, True):
            got = api.chat(messages(system, user), STEPS, stream=stream)
            kind = "stream" if stream else "non-stream"
            if got["error"]:
                why.append(f"{kind}: {got['error']}")
                continue
            if got["text"] != text:
                why.append(f"{kind} text {got['text']!r} != generate's {text!r}")
            # generate's counts cannot tell "length" from an end-of-turn chosen as the last allowed
            # token: then the server may say either (its usage says which).
            ended = got["finish_reason"] if finish == "length" and got["finish_reason"] == "stop" else finish
            if got["finish_reason"] != ended:
                why.append(f"{kind} finish_reason {got['finish_reason']!r}, generate ended by {finish}")
            why += [f"{kind} {w}" for w in sc.usage_problems(got["usage"], prefill, STEPS, ended, decode)]
        r.check(name, not why, "; ".join(why) or f"{finish}, {text[:50]!r}")
    ref = run_generate(binary, model, np, ["--prompt", COMPLETION_PROMPT, "--max-new-tokens", "16"], pp)
    name = f"{label} completions (default max_tokens 16) = generate --prompt"
    if isinstance(ref, str):
        r.check(name, False, ref)
        return
    text, prefill, decode = ref
    got = api.completion(COMPLETION_PROMPT)
    finish = "length" if decode + 1 >= 16 else "stop"
    why = [got["error"]] if got["error"] else []
    if not got["error"]:
        if got["text"] != text:
            why.append(f"text {got['text']!r} != generate's {text!r}")
        if got["finish_reason"] != finish:
            why.append(f"finish_reason {got['finish_reason']!r}, generate ended by {finish}")
        why += sc.usage_problems(got["usage"], prefill, 16, finish, decode)
    r.check(name, not why, "; ".join(why) or f"{finish}, {text[:50]!r}")


def check_concurrency(r, api, label):
    alone = [api.chat(messages(None, p), STEPS) for p in CONCURRENT_PROMPTS]
    results = [None] * len(CONCURRENT_PROMPTS)
    barrier = threading.Barrier(len(CONCURRENT_PROMPTS))
    peak = sc.GaugeWatch(api)
    before = api.metrics()

    def client(i):
        barrier.wait()
        results[i] = api.chat(messages(None, CONCURRENT_PROMPTS[i]), STEPS, stream=i % 2 == 0)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(CONCURRENT_PROMPTS))]
    with peak:
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    batch = sc.mean_batch(before, api.metrics())
    why = []
    for i, (a, b) in enumerate(zip(alone, results)):
        if a["error"] or b is None or b["error"]:
            why.append(f"prompt {i + 1}: {a['error'] or (b or {}).get('error') or 'no answer'}")
        elif (a["text"], a["finish_reason"], a["usage"]) != (b["text"], b["finish_reason"], b["usage"]):
            why.append(f"prompt {i + 1} ({'stream' if i % 2 == 0 else 'non-stream'}) differs: alone "
                       f"{a['text']!r} {a['finish_reason']} {a['usage']}, beside 15 others {b['text']!r} "
                       f"{b['finish_reason']} {b['usage']}")
    r.check(f"{label} 16 concurrent clients = each alone", not why,
            f"{len(why)} of 16 differ: " + "; ".join(why[:3]) if why else f"16 answers identical (half streamed; at most {peak.peak:.0f} running at once, "
            f"mean batch {'?' if batch is None else f'{batch:.1f}'})")


def check_disconnect(r, api, label):
    before = api.metrics()
    other = {}
    t = threading.Thread(target=lambda: other.update(api.chat(messages(None, CONCURRENT_PROMPTS[0]), STEPS,
                                                              stream=True)))
    chunks = sc.stream_then_close(api, messages(None, LONG_PROMPT), LONG_STEPS, after=3, started=t.start)
    t.join(120)
    follow = api.chat(messages(None, "Name a planet."), 8)
    gauges = api.wait_gauges_zero(10)
    after = api.metrics()
    why = []
    if chunks < 3:
        why.append(f"the stream to drop gave {chunks} chunks before it was closed")
    # Its text is the concurrency check's business (batched = alone); here it must just complete.
    if other.get("error") or not other.get("finish_reason") or not other.get("text"):
        why.append(f"the other stream: {other.get('error') or 'no finish_reason or no text'}")
    if follow["error"]:
        why.append(f"follow-up: {follow['error']}")
    if gauges:
        why.append(f"gauges not back to 0 after 10 s: {gauges}")
    made = after.get("attnax_generated_tokens_total", 0) - before.get("attnax_generated_tokens_total", 0)
    r.check(f"{label} client disconnect mid-stream", not why,
            "; ".join(why) or f"the other stream completed, follow-up ok, gauges 0; {made:.0f} tokens generated "
            f"in all (the dropped request asked for {LONG_STEPS})")


def check_drain(r, api, server, label):
    """SIGTERM to rank 0 during a stream (last check of a server: it ends it)."""
    ref = api.chat(messages(None, LONG_PROMPT), LONG_STEPS)
    ranks = server.rank_pids()
    result, probes = {}, []

    def on_first_chunk():
        server.signal(signal.SIGTERM, rank=0)
        probes.extend(sc.drain_probes(api))

    got = sc.raw_stream(api, messages(None, LONG_PROMPT), LONG_STEPS, on_chunk={1: on_first_chunk})
    result.update(got)
    status = server.wait(40)
    time.sleep(0.3)
    left = [p for p in ranks.values() if alive(p)]
    why = []
    if got["error"] or not got["done"]:
        why.append(f"the in-flight stream: {got['error'] or 'no [DONE]'}")
    elif got["text"] != ref["text"] or got["finish_reason"] != ref["finish_reason"]:
        why.append(f"the in-flight stream gave {got['text'][:60]!r} ({got['finish_reason']}), alone "
                   f"{ref['text'][:60]!r} ({ref['finish_reason']})")
    bad = [p for p in probes if not p.endswith(("503", "refused"))]
    if bad:
        why.append("during the drain: " + ", ".join(bad))
    if status is None:
        why.append("still running 40 s after SIGTERM")
    elif status != 0:
        why.append(f"exit status {status}: {server.tail(3)}")
    if left:
        why.append(f"ranks left: {left}")
    server.stop()
    r.check(f"{label} SIGTERM drains", not why,
            "; ".join(why) or f"stream completed ({got['finish_reason']}, {got['chunks']} chunks), "
            f"{', '.join(probes)}, exit 0, all {len(ranks)} rank(s) gone")


def check_killed_rank(r, binary, model):
    try:
        server = Server.attnax(binary, model, np=2, args=["--tp", "2", "--api-key", KEY, "--context", str(CONTEXT),
                                                          "--timeout", str(KILL_TIMEOUT)], name="attnax serve (tp 2, kill)")
    except ServerFailed as e:
        r.check("tp 2 killed rank", False, str(e))
        return
    api = sc.Api(server.url, KEY)
    ranks = server.rank_pids()
    killed = {}

    def kill_rank_1():
        killed["pid"] = server.signal(signal.SIGKILL, rank=1)
        killed["at"] = time.monotonic()

    got = sc.raw_stream(api, messages(None, LONG_PROMPT), LONG_STEPS, on_chunk={3: kill_rank_1})
    status = server.wait(max(0.0, KILL_TIMEOUT + 10 - (time.monotonic() - killed.get("at", time.monotonic()))))
    took = time.monotonic() - killed.get("at", time.monotonic())
    time.sleep(0.3)
    left = [p for p in ranks.values() if alive(p)]
    why = []
    if not killed.get("pid"):
        why.append(f"rank 1 not found among mpirun's children ({ranks})")
    if got["done"] and got["finish_reason"] and not got["error"]:
        why.append(f"the stream completed normally ({got['chunks']} chunks, {got['finish_reason']})")
    if status is None:
        why.append(f"still running {KILL_TIMEOUT + 10} s after the kill (--timeout {KILL_TIMEOUT})")
    elif status == 0:
        why.append("exit status 0")
    if left:
        why.append(f"ranks left: {left}")
    tail = server.tail(2)
    server.stop()
    r.check("tp 2 SIGKILL rank 1 mid-stream", not why,
            "; ".join(why) or f"client saw: {got['error'] or 'stream closed without finish_reason/[DONE]'}; "
            f"exit {status} {took:.1f} s after the kill; no rank left [{tail[-160:]}]")


def check_bad_flags(r, binary, model):
    cases = [("a missing model", ["--model", "/nonexistent/model.gguf"]),
             ("--max-batch 0", ["--model", model, "--max-batch", "0"]),
             ("--weights bogus", ["--model", model, "--weights", "bogus"])]
    why = []
    for name, args in cases:
        try:
            out = subprocess.run([binary, "serve", "--port", "0"] + args, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            why.append(f"{name}: still running after 60 s")
            continue
        errors = [line for line in out.stderr.splitlines() if "error:" in line]
        if out.returncode != 2 or len(errors) != 1:
            why.append(f"{name}: exit {out.returncode}, {len(errors)} error lines ({out.stderr.strip()[-150:]!r})")
    r.check("np 1 bad flags: exit 2 with one error line", not why, "; ".join(why) or ", ".join(c for c, _ in cases))


def run_layout(r, binary, model, np, pp=False):
    """Every check on one server; with `pp` (np pipeline stages) the ones where stages matter:
    generate equality, 16 concurrent = alone, a disconnect, the drain."""
    label = "np 1" if np == 1 else (f"pp {np}" if pp else f"tp {np}")
    args = ["--api-key", KEY, "--context", str(CONTEXT), "--max-body-bytes", str(MAX_BODY), "--max-batch", "16",
            "--drain-seconds", "30"] + layout_flags(np, pp)
    try:
        server = Server.attnax(binary, model, np=np, args=args, name=f"attnax serve ({label})")
    except ServerFailed as e:
        r.check(f"{label} server starts", False, str(e))
        return
    api = sc.Api(server.url, KEY)
    r.check(f"{label} server starts", True, f"{server.url} ({' '.join(args)})")
    sc.check_basics(r, api, label)
    check_generate(r, api, binary, model, np, label, pp)
    if not pp:
        sc.check_sse_framing(r, api, label)
        sc.check_errors(r, api, label, CONTEXT, MAX_BODY)
    check_concurrency(r, api, label)
    check_disconnect(r, api, label)
    if not pp:
        sc.check_metrics(r, api, label)
    check_drain(r, api, server, label)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--layouts", default="np1,tp2,pp2")
    args = ap.parse_args()
    r = sc.Report()
    t0 = time.monotonic()
    layouts = args.layouts.split(",")
    if "np1" in layouts:
        check_bad_flags(r, args.bin, args.model)
        run_layout(r, args.bin, args.model, 1)
    if "tp2" in layouts:
        run_layout(r, args.bin, args.model, 2)
        check_killed_rank(r, args.bin, args.model)
    if "pp2" in layouts:
        run_layout(r, args.bin, args.model, 2, pp=True)
    print(f"serve: {r.passed} passed, {r.failed} failed ({time.monotonic() - t0:.0f} s)")
    return 1 if r.failed or not r.passed else 0


if __name__ == "__main__":
    sys.exit(main())
