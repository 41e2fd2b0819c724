"""The client side of scripts/test-serve: requests to an OpenAI-compatible server and the checks
that need only a running server (serve_checks.py has those that start, signal and compare).

    Report()                     check(label, ok, detail) prints one PASS/FAIL line and counts it
    Api(url, key)                chat(), completion() through the real `openai` client (no retries);
                                 get(), metrics(), curl(); wait_gauges_zero()
    raw_stream(api, ...)         a chat stream read line by line (httpx): text, finish_reason,
                                 usage, [DONE] seen, the error; callbacks at chosen chunks
    stream_then_close(...)       a stream closed by the client after a few chunks
    drain_probes(api)            /health and a new request while a server drains
    check_basics, check_sse_framing, check_errors, check_metrics   (see serve_checks.py)
"""
import json
import re
import subprocess
import tempfile
import threading
import time

import httpx
import openai

from serve_process import metrics as parse_metrics

PREFILL = re.compile(r"prefill: (\d+) tokens.*?decode: (\d+) tokens")
METRICS = ["attnax_requests_total", "attnax_prompt_tokens_total", "attnax_generated_tokens_total",
           "attnax_queue_depth", "attnax_batch_size", "attnax_time_to_first_token_seconds",
           "attnax_inter_token_latency_seconds"]


class Report:
    def __init__(self):
        self.passed = self.failed = 0
        self.last = time.monotonic()

    def check(self, label, ok, detail=""):
        """One line: PASS or FAIL, the check, what was seen, the seconds since the previous line."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        now = time.monotonic()
        print(f"{'PASS' if ok else 'FAIL'} {label}" + (f": {detail}" if detail else "") + f" [{now - self.last:.1f} s]",
              flush=True)
        self.last = now


def _usage(u):
    return None if u is None else (u.prompt_tokens, u.completion_tokens, u.total_tokens)


class Api:
    def __init__(self, url, key):
        self.url, self.key, self.model = url, key, "attnax"
        self.client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)
        self.http = httpx.Client(timeout=httpx.Timeout(120, connect=5))

    def headers(self):
        return {"Authorization": f"Bearer {self.key}"}

    def chat(self, msgs, max_tokens, stream=False, **extra):
        """{text, finish_reason, usage (prompt, completion, total), error} of a greedy chat request."""
        out = {"text": "", "finish_reason": None, "usage": None, "error": None}
        try:
            if not stream:
                r = self.client.chat.completions.create(model=self.model, messages=msgs, max_tokens=max_tokens,
                                                        temperature=0, **extra)
                out.update(text=r.choices[0].message.content or "", finish_reason=r.choices[0].finish_reason,
                           usage=_usage(r.usage))
                return out
            parts = []
            for chunk in self.client.chat.completions.create(model=self.model, messages=msgs, max_tokens=max_tokens,
                                                             temperature=0, stream=True,
                                                             stream_options={"include_usage": True}, **extra):
                for c in chunk.choices:
                    parts.append(c.delta.content or "")
                    out["finish_reason"] = c.finish_reason or out["finish_reason"]
                if chunk.usage is not None:
                    out["usage"] = _usage(chunk.usage)
            out["text"] = "".join(parts)
        except (openai.OpenAIError, httpx.HTTPError) as e:
            out["error"] = f"{type(e).__name__}: {str(e)[:200]}"
        return out

    def completion(self, prompt, **extra):
        out = {"text": "", "finish_reason": None, "usage": None, "error": None}
        try:
            r = self.client.completions.create(model=self.model, prompt=prompt, temperature=0, **extra)
            out.update(text=r.choices[0].text, finish_reason=r.choices[0].finish_reason, usage=_usage(r.usage))
        except (openai.OpenAIError, httpx.HTTPError) as e:
            out["error"] = f"{type(e).__name__}: {str(e)[:200]}"
        return out

    def get(self, path, key=True):
        return self.http.get(self.url + path, headers=self.headers() if key else {})

    def metrics(self):
        try:
            r = self.get("/metrics")
            return parse_metrics(r.text) if r.status_code == 200 else {}
        except httpx.HTTPError:
            return {}

    def wait_gauges_zero(self, timeout):
        """{} once the queue and running gauges are both 0, else their last values."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            gauges = {k: m.get(k) for k in ("attnax_queue_depth", running_gauge(m))}
            if all(v == 0 for v in gauges.values()):
                return {}
            if time.monotonic() > deadline:
                return gauges
            time.sleep(0.1)

    def curl(self, method, path, body=None, key="default", content_type="application/json"):
        """(status, body text) of one curl request; key None sends no Authorization header."""
        with tempfile.NamedTemporaryFile() as data, tempfile.NamedTemporaryFile() as out:
            cmd = ["curl", "-sS", "-m", "60", "-o", out.name, "-w", "%{http_code}", "-X", method, self.url + path]
            key = self.key if key == "default" else key
            if key is not None:
                cmd += ["-H", f"Authorization: Bearer {key}"]
            if body is not None:
                data.write(body if isinstance(body, bytes) else json.dumps(body).encode())
                data.flush()
                cmd += ["-H", f"Content-Type: {content_type}", "--data-binary", "@" + data.name]
            p = subprocess.run(cmd, capture_output=True, text=True)
            text = open(out.name, errors="replace").read()
        try:
            return int(p.stdout.strip() or 0), text
        except ValueError:
            return 0, f"curl: {p.stderr.strip()}"


def running_gauge(m):
    """The gauge of requests holding a slot: attnax_running_requests, else attnax_batch_size when it
    is a gauge (the contract names the batch gauge; a histogram has _sum and _count instead)."""
    return "attnax_running_requests" if "attnax_running_requests" in m or "attnax_batch_size" not in m \
        else "attnax_batch_size"


def mean_batch(before, after):
    """The mean of attnax_batch_size's observations between two scrapes (histogram or summary), or None."""
    n = after.get("attnax_batch_size_count", 0) - before.get("attnax_batch_size_count", 0)
    return (after.get("attnax_batch_size_sum", 0) - before.get("attnax_batch_size_sum", 0)) / n if n > 0 else None


class GaugeWatch:
    """The most running requests seen while the with-block runs (polled every 20 ms)."""

    def __init__(self, api):
        self.api, self.peak = api, 0.0
        self._stop = threading.Event()

    def _poll(self):
        while not self._stop.is_set():
            m = self.api.metrics()
            self.peak = max(self.peak, m.get(running_gauge(m), 0.0))
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def raw_stream(api, msgs, max_tokens, on_chunk=None, close_after=None):
    """A greedy chat stream read line by line. on_chunk {n: fn} calls fn after the n-th chunk with
    choices; close_after n closes the connection there. Returns {text, finish_reason, usage, done
    ([DONE] seen), chunks, lines (every non-empty line), error}."""
    out = {"text": "", "finish_reason": None, "usage": None, "done": False, "chunks": 0, "lines": [], "error": None,
           "content_type": None}
    body = {"model": api.model, "messages": msgs, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    try:
        with api.http.stream("POST", api.url + "/v1/chat/completions", json=body, headers=api.headers()) as r:
            out["content_type"] = r.headers.get("content-type")
            if r.status_code != 200:
                out["error"] = f"HTTP {r.status_code}: {r.read().decode(errors='replace')[:200]}"
                return out
            for line in r.iter_lines():
                if not line.strip():
                    continue
                out["lines"].append(line)
                if not line.startswith("data: "):
                    continue
                data = line[len("data: "):]
                if data.strip() == "[DONE]":
                    out["done"] = True
                    continue
                obj = json.loads(data)
                if "error" in obj:
                    out["error"] = f"error event: {json.dumps(obj['error'])[:200]}"
                    continue
                if obj.get("usage"):
                    u = obj["usage"]
                    out["usage"] = (u.get("prompt_tokens"), u.get("completion_tokens"), u.get("total_tokens"))
                for c in obj.get("choices", []):
                    out["text"] += (c.get("delta") or {}).get("content") or ""
                    out["finish_reason"] = c.get("finish_reason") or out["finish_reason"]
                if obj.get("choices"):
                    out["chunks"] += 1
                    if on_chunk and out["chunks"] in on_chunk:
                        on_chunk[out["chunks"]]()
                    if close_after is not None and out["chunks"] >= close_after:
                        return out
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        out["error"] = f"{type(e).__name__}: {str(e)[:200] or 'connection closed'}"
    return out


def stream_then_close(api, msgs, max_tokens, after, started=None):
    """Reads `after` chunks of a stream, calling started() after the first, then closes the
    connection; returns how many chunks came."""
    got = raw_stream(api, msgs, max_tokens, on_chunk={1: started} if started else None, close_after=after)
    return got["chunks"]


def drain_probes(api, patience=5.0):
    """After SIGTERM: /health (no key) until it is 503 or refused (up to `patience` s), then one new
    chat request. Returns lines like 'health 503', 'new request refused'."""
    probes = []
    deadline = time.monotonic() + patience
    while True:
        try:
            status = str(api.http.get(api.url + "/health", timeout=2).status_code)
        except httpx.ConnectError:
            status = "refused"
        except httpx.HTTPError as e:
            status = type(e).__name__
        if status != "200" or time.monotonic() > deadline:
            probes.append(f"health {status}" + (f" for {patience:.0f} s" if status == "200" else ""))
            break
        time.sleep(0.02)
    try:
        r = api.http.post(api.url + "/v1/chat/completions", headers=api.headers(), timeout=10,
                          json={"model": api.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
        probes.append(f"new request {r.status_code}")
    except httpx.ConnectError:
        probes.append("new request refused")
    except httpx.HTTPError as e:
        probes.append(f"new request {type(e).__name__}")
    return probes


def usage_problems(usage, prefill, max_tokens, finish, decode):
    """What is wrong with (prompt, completion, total) given generate's prefill and decode counts."""
    if usage is None:
        return ["no usage"]
    p, c, t = usage
    why = []
    if p != prefill:
        why.append(f"prompt_tokens {p}, generate prefilled {prefill}")
    if t != p + c:
        why.append(f"total_tokens {t} != {p} + {c}")
    if finish == "length" and c != max_tokens:
        why.append(f"completion_tokens {c} at finish length, max_tokens {max_tokens}")
    if finish == "stop" and c not in (decode, decode + 1):  # with or without the end-of-turn token
        why.append(f"completion_tokens {c}, generate made {decode} tokens before its end-of-turn")
    return why


def check_basics(r, api, label):
    why = []
    h = api.get("/health", key=False)
    try:
        body = h.json()
    except ValueError:
        body = h.text[:100]
    if h.status_code != 200 or body != {"status": "ok"}:
        why.append(f"/health without a key: {h.status_code} {body}")
    try:
        models = [m.id for m in api.client.models.list().data]
        if models:
            api.model = models[0]
        else:
            why.append("/v1/models lists no model")
    except openai.OpenAIError as e:
        why.append(f"/v1/models: {type(e).__name__}: {str(e)[:150]}")
    r.check(f"{label} /health and /v1/models", not why, "; ".join(why) or f"model {api.model!r}")


def check_sse_framing(r, api, label):
    got = raw_stream(api, [{"role": "user", "content": "What is 2+2?"}], 24)
    why = [got["error"]] if got["error"] else []
    lines = got["lines"]
    if not (got["content_type"] or "").startswith("text/event-stream"):
        why.append(f"content-type {got['content_type']!r}")
    if any(not line.startswith(("data: ", ":")) for line in lines):
        why.append(f"a line that is not 'data: ': {next(x for x in lines if not x.startswith(('data: ', ':')))[:80]!r}")
    if not lines or lines[-1].strip() != "data: [DONE]":
        why.append(f"last line {lines[-1][:80] if lines else None!r}, not 'data: [DONE]'")
    objs = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    if any(o.get("object") != "chat.completion.chunk" for o in objs):
        why.append("a chunk whose object is not chat.completion.chunk")
    usage_chunks = [o for o in objs if o.get("usage")]
    if len(usage_chunks) != 1 or usage_chunks[0].get("choices") not in ([], None):
        why.append(f"{len(usage_chunks)} usage chunks (stream_options.include_usage wants one, with empty choices)")
    finishes = [c.get("finish_reason") for o in objs for c in o.get("choices", []) if c.get("finish_reason")]
    if len(finishes) != 1:
        why.append(f"finish_reason in {len(finishes)} chunks")
    r.check(f"{label} SSE framing", not why, "; ".join(why) or f"{len(objs)} chunks, one usage chunk, [DONE] last")


def error_shape(status, text):
    """'' when `text` is an OpenAI error object, else what is wrong."""
    try:
        err = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        return f"body is not {{\"error\": ...}}: {text[:120]!r}"
    if not isinstance(err, dict) or not isinstance(err.get("message"), str) or not err["message"]:
        return f"error without a message: {text[:120]!r}"
    if not isinstance(err.get("type"), str) or "param" not in err or "code" not in err:
        return f"error without type/param/code: {text[:160]!r}"
    return ""


def check_errors(r, api, label, context, max_body):
    hi = [{"role": "user", "content": "Hi"}]
    chat = "/v1/chat/completions"
    long_text = "hello " * (context + 50)
    cases = [
        ("malformed JSON", "POST", chat, b'{"messages": [{"role": "user", "content": "Hi"}', "default", 400, None),
        ("max_tokens of the wrong type", "POST", chat, {"messages": hi, "max_tokens": "ten"}, "default", 400, None),
        ("messages of the wrong type", "POST", chat, {"messages": "Hi"}, "default", 400, None),
        ("max_tokens -5", "POST", chat, {"messages": hi, "max_tokens": -5}, "default", 400, None),
        ("max_tokens 0", "POST", chat, {"messages": hi, "max_tokens": 0}, "default", 400, None),
        ("max_tokens 1000000", "POST", chat, {"messages": hi, "max_tokens": 1000000}, "default", 400, None),
        ("empty messages", "POST", chat, {"messages": []}, "default", 400, None),
        ("n 2", "POST", chat, {"messages": hi, "n": 2}, "default", 400, None),
        ("5 stop strings", "POST", chat, {"messages": hi, "stop": ["a", "b", "c", "d", "e"]}, "default", 400, None),
        ("unknown role", "POST", chat, {"messages": [{"role": "wizard", "content": "Hi"}]}, "default", 400, None),
        ("chat prompt over --context", "POST", chat, {"messages": [{"role": "user", "content": long_text}],
                                                      "max_tokens": 4}, "default", 400, "context_length_exceeded"),
        ("completion prompt over --context", "POST", "/v1/completions", {"prompt": long_text, "max_tokens": 4},
         "default", 400, "context_length_exceeded"),
        ("body over --max-body-bytes", "POST", chat, {"messages": [{"role": "user", "content": "x" * (max_body + 4096)}]},
         "default", 413, None),
        ("no key", "POST", chat, {"messages": hi, "max_tokens": 2}, None, 401, None),
        ("wrong key", "POST", chat, {"messages": hi, "max_tokens": 2}, "not-the-key", 401, None),
        ("unknown route", "GET", "/v1/nothing-here", None, "default", 404, None),
        ("wrong method", "GET", chat, None, "default", 405, None),
        ("embeddings on a decoder model", "POST", "/v1/embeddings", {"input": "Hi", "model": api.model}, "default", 400,
         None),
    ]
    for name, method, path, body, key, want, code in cases:
        status, text = api.curl(method, path, body, key=key)
        why = [] if status == want else [f"status {status}, want {want}: {text[:120]!r}"]
        shape = error_shape(status, text)
        if shape:
            why.append(shape)
        elif code and json.loads(text)["error"].get("code") != code:
            why.append(f"code {json.loads(text)['error'].get('code')!r}, want {code!r}")
        after, atext = api.curl("POST", chat, {"model": api.model, "messages": hi, "max_tokens": 2})
        if after != 200:
            why.append(f"the next normal request got {after}: {atext[:100]!r}")
        r.check(f"{label} error: {name} -> {want}", not why, "; ".join(why) or "OpenAI error shape; next request 200")


def check_metrics(r, api, label):
    why = []
    resp = api.get("/metrics")
    if resp.status_code != 200:
        r.check(f"{label} /metrics", False, f"status {resp.status_code}")
        return
    names = set(parse_metrics(resp.text))
    missing = [m for m in METRICS if not any(n == m or n.startswith(m + "_") for n in names)]
    if missing:
        why.append(f"missing {', '.join(missing)}")
    before = parse_metrics(resp.text)
    got = api.chat([{"role": "user", "content": "Name a color."}], 5)
    after = api.metrics()
    if got["error"] or not got["usage"]:
        why.append(f"request: {got['error'] or 'no usage'}")
    else:
        p, c, _ = got["usage"]
        for name, least in (("attnax_requests_total", 1), ("attnax_prompt_tokens_total", p),
                            ("attnax_generated_tokens_total", c)):
            moved = after.get(name, 0) - before.get(name, 0)
            if moved < least:
                why.append(f"{name} moved by {moved:g} over a request of {p} prompt and {c} generated tokens")
    r.check(f"{label} /metrics", not why, "; ".join(why) or "7 metrics; counters move with a request")
