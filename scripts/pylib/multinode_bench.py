"""The parsing and the tables of scripts/bench-multinode (generate across test hosts at shaped link rates).

    python multinode_bench.py record --stderr FILE --rc N --seconds S --before C --after C [--meta K=V ...]
        one JSON line on stdout for one `attnax generate` job: its per-run speeds, best warm run, the
        lines worth keeping (layout:, generate:, time per decode token ...), the interface counters
        before and after, and on failure "error": the first line that says why
    python multinode_bench.py link --meta K=V ... -- MEASURE_LINE
        one JSON line for a `scripts/cluster measure` result
    python multinode_bench.py report --records FILE --out FILE [--header K=V ...]
        the markdown tables (one per model) on stdout, and every record with the header as one JSON
        document in --out (written to a temporary file and renamed)

`attnax generate --runs N` prints per run, on stderr,
    run K of N: prefill: P tokens in T s (X tokens/s); decode: D tokens in T s (Y tokens/s)
The best warm run is the largest rate of runs 2..N (run 1 when N is 1), taken for prefill and for
decode separately. Counters (C above) are "DEV.STAT=VALUE ..." for ax-h1-br, ax-h2-br and axbr0 with
STAT tx_bytes, rx_bytes, tx_packets, rx_packets, and ax-h1/ax-h2.tcp_out_segs (Tcp OutSegs of the host's
namespace). With 2 hosts, what crossed between them (both
directions) is (h1 + h2 - bridge) / 2: ax-h1-br carries h1<->h2 and h1<->mpirun (the root
namespace: launch, stdout forwarding), ax-h2-br likewise, axbr0 the mpirun traffic of both.
A veth counts a GSO aggregate as one packet, so those packets are sends and acks; frames are TCP
segments: both hosts' OutSegs less the bridge's rx packets (mpirun's share, one segment a message),
with one rank per host only: ranks sharing a host talk over its lo, and OutSegs counts that too.
Decode traffic per token: the same layout and rate run with --max-new-tokens T and S (same --runs),
(between(T) - between(S)) / (decode tokens(T) - decode tokens(S)), so the prefills, the loading and
the launch cancel. Standard library only.
"""
import argparse
import json
import os
import re
import sys
import tempfile

RUN_RE = re.compile(r"^run (\d+) of (\d+): prefill: (\d+) tokens in ([\d.]+) s \(([\d.]+) tokens/s\); "
                    r"decode: (\d+) tokens in ([\d.]+) s \(([\d.]+) tokens/s\)")
KEEP = ("layout", "generate:", "time per decode token")
DEVICES = ("ax-h1-br", "ax-h2-br", "axbr0")
STATS = ("tx_bytes", "rx_bytes", "tx_packets", "rx_packets")


def parse_counters(text):
    out = {}
    for item in text.split():
        key, _, value = item.partition("=")
        if value.isdigit():
            out[key] = int(value)
    return out


def between(counters, unit):
    """Bytes (unit "bytes") or packets that crossed between host 1 and host 2, both ways."""
    def total(dev):
        return sum(counters.get(f"{dev}.{d}_{unit}", 0) for d in ("tx", "rx"))
    return (total("ax-h1-br") + total("ax-h2-br") - total("axbr0")) / 2


def segments_between(counters):
    """TCP segments (frames) host 1 and host 2 sent each other: both hosts' Tcp OutSegs less the
    packets that reached the bridge (the hosts' traffic with mpirun, small messages: one each)."""
    return (counters.get("ax-h1.tcp_out_segs", 0) + counters.get("ax-h2.tcp_out_segs", 0)
            - counters.get("axbr0.rx_packets", 0))


def first_error(lines, rc):
    """The line that says why a job failed: attnax's own error line, else a timeout, else the first line."""
    for pattern in (r"^Error: ", r"\berror\b", r"(?i)\b(failed|refused|abort)"):
        for line in lines:
            if re.search(pattern, line):
                return line.strip()
    if rc == 124:
        return "timed out (timeout killed the job)"
    text = [l.strip() for l in lines if l.strip()]
    return text[0] if text else f"exit status {rc} and nothing on stderr"


def meta_dict(pairs):
    meta = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        if not sep:
            sys.exit(f"multinode_bench: --meta wants KEY=VALUE (got '{p}')")
        meta[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
    return meta


def record(a):
    with open(a.stderr, errors="replace") as f:
        lines = f.read().splitlines()
    runs = []
    for line in lines:
        m = RUN_RE.match(line)
        if m:
            k, n, pt, ps, prate, dt, ds, drate = m.groups()
            runs.append(dict(run=int(k), of=int(n), prefill_tokens=int(pt), prefill_s=float(ps),
                             prefill_tps=float(prate), decode_tokens=int(dt), decode_s=float(ds), decode_tps=float(drate)))
    rec = meta_dict(a.meta)
    rec.update(rc=a.rc, seconds=a.seconds, runs=runs,
               lines=[l for l in lines if l.startswith(KEEP)],
               before=parse_counters(a.before), after=parse_counters(a.after))
    warm = [r for r in runs if r["run"] >= 2] or runs
    if warm:
        rec["best_decode_tps"] = max(r["decode_tps"] for r in warm)
        rec["best_prefill_tps"] = max(r["prefill_tps"] for r in warm)
    want = rec.get("want_hosts")
    layout = next((l for l in lines if l.startswith("layout: ")), "")
    hosts = re.search(r"; hosts: ([^;]*)", layout)
    if a.rc != 0 or not runs:
        rec["error"] = first_error(lines, a.rc)
    elif want and (not hosts or hosts.group(1).strip() != want):
        rec["error"] = f"placement: want hosts '{want}', layout line says '{layout or 'nothing'}'"
    json.dump(rec, sys.stdout)
    print()


def link(a):
    rec = meta_dict(a.meta)
    m = re.search(r"([\d.]+) MB/s", a.line)
    rec.update(kind="link", line=a.line.strip(), mbs=float(m.group(1)) if m else None)
    json.dump(rec, sys.stdout)
    print()


def fmt(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def cell_size(n):
    if n is None:
        return "-"
    return f"{n / 1e3:,.1f} kB" if n >= 1e3 else f"{n:,.0f} B"


def report(a):
    records = []
    with open(a.records) as f:
        for line in f:
            if line.strip():
                records.append(json.loads(line))
    header = meta_dict(a.header)
    models = list(dict.fromkeys(r["model"] for r in records if "model" in r))
    for key, value in header.items():
        print(f"{key}: {value}")
    for model in models:
        mine = [r for r in records if r.get("model") == model]
        print(f"\n### {model}\n")
        links = [r for r in mine if r.get("kind") == "link"]
        if links:
            print("link check (scripts/cluster measure, one TCP stream ax-h1 -> ax-h2): " +
                  "; ".join(f"{r['rate']} {fmt(r['mbs'], 3)} MB/s" for r in links))
        speed = [r for r in mine if r.get("kind") == "speed"]
        short = [r for r in mine if r.get("kind") == "short"]
        cells = {}
        order = []
        for r in speed:
            key = (r["layout"], r["rate"])
            if key not in cells:
                cells[key] = []
                order.append(key)
            cells[key].append(r)
        layouts = list(dict.fromkeys(k[0] for k in order))
        rates = list(dict.fromkeys(k[1] for k in order))
        order.sort(key=lambda k: (layouts.index(k[0]), rates.index(k[1])))
        rows = []
        print("| layout | link | decode tok/s (best) | per round | prefill tok/s (best) | "
              "bytes/token (both ways) | packets/token (veth) | TCP segments/token | comm ms/token (rank 0, round 1) |")
        print("|---|---|---:|---|---:|---:|---:|---:|---:|")
        best = {}
        for key in order:
            layout, rate = key
            rs = cells[key]
            ok = [r for r in rs if "error" not in r]
            rounds = " / ".join("fail" if "error" in r else fmt(r.get("best_decode_tps")) for r in rs)
            if not ok:
                why = rs[0]["error"].replace("|", "/")
                why = why if len(why) <= 160 else why[:157] + "..."
                print(f"| {layout} | {rate} | failed: {why} | {rounds} | | | | | |")
                continue
            d = max(r["best_decode_tps"] for r in ok)
            p = max(r["best_prefill_tps"] for r in ok)
            best[key] = d
            per_tok = per_pkt = per_seg = None
            long_r = next((r for r in ok if r.get("round") == 1), ok[0])
            s = next((x for x in short if x["layout"] == layout and x["rate"] == rate and "error" not in x), None)
            if s and rs[0].get("cross"):
                tokens = sum(x["decode_tokens"] for x in long_r["runs"]) - sum(x["decode_tokens"] for x in s["runs"])
                if tokens > 0:
                    def delta(r, unit):
                        return between(r["after"], unit) - between(r["before"], unit)
                    per_tok = (delta(long_r, "bytes") - delta(s, "bytes")) / tokens
                    per_pkt = (delta(long_r, "packets") - delta(s, "packets")) / tokens
                    segs = [segments_between(r["after"]) - segments_between(r["before"]) for r in (long_r, s)]
                    per_seg = (segs[0] - segs[1]) / tokens
                    long_r.update(decode_bytes_per_token=per_tok, decode_packets_per_token=per_pkt,
                                  decode_segments_per_token=per_seg)
            comm = None
            for line in long_r["lines"]:
                m = re.search(r"communication ([\d.]+)", line)
                if line.startswith("time per decode token") and m:
                    comm = float(m.group(1))
            b = cell_size(per_tok) if rs[0].get("cross") else "(one host)"
            pk = fmt(per_pkt) if rs[0].get("cross") else ""
            # Ranks sharing a host talk TCP over that namespace's lo, which OutSegs counts as well.
            sg = "" if not rs[0].get("cross") else fmt(per_seg) if rs[0].get("per_host") == 1 else "n/a (lo)"
            print(f"| {layout} | {rate} | **{fmt(d)}** | {rounds} | {fmt(p)} | {b} | {pk} | {sg} | {fmt(comm, 2)} |")
            rows.append(long_r)

        def ratio(num, den):
            if num in best and den in best and best[den]:
                return f"{best[num] / best[den]:.3f} ({fmt(best[num])} / {fmt(best[den])})"
            return "n/a (" + ", ".join(f"{k[0]} at {k[1]}" for k in (num, den) if k not in best) + " missing or failed)"
        print()
        print(f"- decode, pp-across at 10mbit / pp-across unlimited: {ratio(('pp-across', '10mbit'), ('pp-across', 'unlimited'))}")
        print(f"- decode, pp-across / tp-across at 10mbit: {ratio(('pp-across', '10mbit'), ('tp-across', '10mbit'))}")
        print(f"- decode, tp-across at 10mbit / tp-across unlimited: {ratio(('tp-across', '10mbit'), ('tp-across', 'unlimited'))}")
        print("\nlines from attnax (round 1):")
        seen = set()
        for r in speed:
            if r.get("round") == 1:
                for line in r["lines"]:
                    tag = (r["layout"], line if not line.startswith("time per") else r["rate"] + line)
                    if tag not in seen:
                        seen.add(tag)
                        print(f"  {r['layout']} {r['rate']}: {line}")
        print("\ncommands (round 1, from the repository root; the cross-host ones on `scripts/cluster run 2` after "
              "`scripts/cluster rate RATE`; the traffic jobs the same with --max-new-tokens "
              f"{next((r['tokens'] for r in short), '-')}):")
        seen = set()
        for r in speed:
            if r.get("round") == 1 and r["layout"] not in seen:
                seen.add(r["layout"])
                print(f"  {r['layout']}: {r['cmd']}")
    doc = dict(header=header, records=records)
    out_dir = os.path.dirname(os.path.abspath(a.out))
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".bench-multinode-")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, a.out)
    print(f"\nraw results: {a.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--stderr", required=True)
    r.add_argument("--rc", type=int, required=True)
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--before", default="")
    r.add_argument("--after", default="")
    r.add_argument("--meta", action="append")
    lk = sub.add_parser("link")
    lk.add_argument("--meta", action="append")
    lk.add_argument("line")
    rp = sub.add_parser("report")
    rp.add_argument("--records", required=True)
    rp.add_argument("--out", required=True)
    rp.add_argument("--header", action="append")
    a = ap.parse_args()
    {"record": record, "link": link, "report": report}[a.cmd](a)


if __name__ == "__main__":
    main()
