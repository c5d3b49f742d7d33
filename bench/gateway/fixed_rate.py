#!/usr/bin/env python3
"""Fixed-rate (open-loop) comparison of nginx directly against the gateway in front of it.

1. Finds the highest rate the gateway sustains with bench/loadgen (doubling, then bisecting): a rate
   is sustained when the achieved rate is within 1% of the offered one, every request was answered
   within the run, and p99 stays under SUSTAIN_P99_MS (a queue that keeps growing pushes it to
   hundreds of ms within seconds).
2. Drives both the direct path and the gateway at the same fixed shares of that rate, interleaved
   (round 1: rates ascending, direct then gateway; round 2: gateway then direct; ...), and prints a
   markdown table of the medians over rounds, with the overhead (gateway minus direct) per percentile.

Usage: fixed_rate.py --loadgen BIN --direct PORT --gateway PORT --body FILE --gw-pids P,P
                     --up-pids P,P [--rounds 3] [--duration 8] [--shares 25,50,75,90] [--max-rate R]
Raw loadgen lines go to stderr (and to --raw FILE when given)."""
import argparse
import os
import statistics
import subprocess
import sys
import time

SUSTAIN_P99_MS = 10.0
TICK = os.sysconf("SC_CLK_TCK")
QUIET_CORES = float(os.environ.get("BENCH_QUIET_CORES", "0.15"))  # other load that makes a run disturbed
QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "1200"))  # at most this long per wait
RETRIES = int(os.environ.get("BENCH_RETRY_DISTURBED", "3"))


def proc_cpu(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except FileNotFoundError:
            pass
    return total / TICK


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2]) / TICK  # user + nice + system; irq/softirq apart


def children(pids):
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
    return out


def wait_quiet():
    """Until less than QUIET_CORES of the machine is busy over 1 s, twice in a row (at most QUIET_WAIT
    seconds). Our own servers are idle between runs, so what is busy is someone else's work."""
    deadline, calm = time.monotonic() + QUIET_WAIT, 0
    while calm < 2 and time.monotonic() < deadline:
        b0 = machine_busy()
        time.sleep(1)
        calm = calm + 1 if machine_busy() - b0 < QUIET_CORES else 0


class Bench:
    def __init__(self, a):
        self.a = a
        self.raw = open(a.raw, "a") if a.raw else None
        self.gw_pids = [int(p) for p in a.gw_pids.split(",")]
        self.up_pids = [int(p) for p in a.up_pids.split(",")]
        self.disturbed = 0

    def gateway_procs(self):
        return self.gw_pids + children(self.gw_pids)

    def upstream_procs(self):
        return self.up_pids + children(self.up_pids)

    def load(self, label, port, rate, duration, warmup):
        """One run at a quiet moment; repeated (RETRIES times at most) while others used more than
        QUIET_CORES during it; the least disturbed attempt is kept."""
        best = None
        for _ in range(RETRIES + 1):
            wait_quiet()
            r = self.load_once(label, port, rate, duration, warmup)
            if best is None or r["other_cores"] < best["other_cores"]:
                best = r
            if r["other_cores"] < QUIET_CORES:
                break
        self.disturbed += best["other_cores"] >= QUIET_CORES
        return best

    def load_once(self, label, port, rate, duration, warmup, path="/v1/chat/completions", body=None):
        gw, up = self.gateway_procs(), self.upstream_procs()
        gw0, up0, busy0 = proc_cpu(gw), proc_cpu(up), machine_busy()
        cmd = [self.a.loadgen, "--port", str(port), "--path", path, "--body-file", body or self.a.body,
               "--header", "Content-Type: application/json", "--header", "Authorization: Bearer bench-key",
               "--rate", str(rate), "--duration", str(duration), "--warmup", str(warmup),
               "--connections", str(self.a.connections), "--label", label,
               "--record-header", "x-agente-overhead-duration-ms"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        gw1, up1, busy1 = proc_cpu(gw), proc_cpu(up), machine_busy()
        if p.returncode == 1 or not p.stdout.strip():
            sys.exit(f"loadgen failed ({label} at {rate}/s): {p.stderr.strip()}")
        r = dict(kv.split("=", 1) for kv in p.stdout.split())
        for k in list(r):
            if k != "label":
                r[k] = float(r[k])
        r["gateway_cpu_s"], r["nginx_cpu_s"] = gw1 - gw0, up1 - up0
        # CPU of everything else on the machine during the run, in cores (tick-based, rough).
        ours = (gw1 - gw0) + (up1 - up0) + r["cpu_s"]
        r["other_cores"] = max(0.0, (busy1 - busy0) - ours) / (duration + warmup)
        line = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())
        print(line, file=sys.stderr, flush=True)
        if self.raw:
            print(line, file=self.raw, flush=True)
        return r

    def sustained(self, rate):
        r = self.load("probe", self.a.gateway, rate, self.a.probe_seconds, 1)
        ok = r["unfinished"] == 0 and r["achieved"] >= 0.99 * rate and r["p99"] <= SUSTAIN_P99_MS
        return ok, r

    def find_max(self):
        lo, hi, rate = 0, None, 4000
        while hi is None:
            ok, _ = self.sustained(rate)
            if ok:
                lo, rate = rate, rate * 2
            else:
                hi = rate
            if rate > 400000:
                sys.exit("no upper bound found")
        while hi - lo > max(500, lo * 0.03):
            mid = (lo + hi) // 2
            ok, _ = self.sustained(mid)
            lo, hi = (mid, hi) if ok else (lo, mid)
        return lo // 100 * 100


def ms(x):
    return f"{x:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--direct", type=int, required=True)
    ap.add_argument("--gateway", type=int, required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--gw-pids", required=True)
    ap.add_argument("--up-pids", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--probe-seconds", type=float, default=4)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--shares", default="25,50,75,90")
    ap.add_argument("--max-rate", type=int, default=0)
    ap.add_argument("--raw")
    a = ap.parse_args()
    b = Bench(a)

    top = a.max_rate or b.find_max()
    print(f"highest rate the gateway sustains: {top:,}/s (achieved within 1% of offered, p99 < "
          f"{SUSTAIN_P99_MS:g} ms over {a.probe_seconds:g} s)", flush=True)
    shares = [int(s) for s in a.shares.split(",")]
    rates = {s: round(top * s / 100 / 100) * 100 for s in shares}
    runs = {(s, t): [] for s in shares for t in ("direct", "gateway")}
    for rnd in range(a.rounds):
        order = ("direct", "gateway") if rnd % 2 == 0 else ("gateway", "direct")
        for s in shares:
            for t in order:
                port = a.direct if t == "direct" else a.gateway
                runs[(s, t)].append(b.load(t, port, rates[s], a.duration, a.warmup))

    def med(s, t, k):
        return statistics.median(r[k] for r in runs[(s, t)])

    print(f"\n{a.rounds} interleaved rounds of {a.duration:g} s (+{a.warmup:g} s uncounted) per rate and "
          f"path, {a.connections} keep-alive connections; medians over rounds, ms; latency from each "
          f"request's scheduled send time to its last byte.\n")
    print("| rate (share of max) | direct p50 / p99 / p99.9 | gateway p50 / p99 / p99.9 | "
          "overhead p50 / p99 / p99.9 | gateway's own overhead header p50 / p99 / p99.9 | gateway CPU | other load |")
    print("|---|---|---|---|---|---|---|")
    for s in shares:
        d = [med(s, "direct", k) for k in ("p50", "p99", "p999")]
        g = [med(s, "gateway", k) for k in ("p50", "p99", "p999")]
        o = [gv - dv for gv, dv in zip(g, d)]
        h = [med(s, "gateway", k) for k in ("hdr_p50", "hdr_p99", "hdr_p999")]
        gw_cpu = statistics.median(r["gateway_cpu_s"] / (a.duration + a.warmup) for r in runs[(s, "gateway")])
        other = max(r["other_cores"] for rs in (runs[(s, "direct")], runs[(s, "gateway")]) for r in rs)
        print(f"| {rates[s]:,}/s ({s}%) | {' / '.join(map(ms, d))} | {' / '.join(map(ms, g))} | "
              f"{' / '.join('%+.2f' % x for x in o)} | {' / '.join(map(ms, h))} | {gw_cpu:.2f} cores | "
              f"{other:.2f} cores |")
    hi = shares[-1]
    p99_over = med(hi, "gateway", "p99") - med(hi, "direct", "p99")
    print(f"\np99 overhead at {rates[hi]:,}/s ({hi}% of the highest sustained rate): {p99_over:+.2f} ms "
          f"-> target <= 1 ms {'met' if p99_over <= 1.0 else 'NOT met'}")
    own = med(hi, "gateway", "hdr_p99")
    print(f"p99 of the gateway's own overhead header (x-agente-overhead-duration-ms: time in the gateway, "
          f"upstream excluded) at {rates[hi]:,}/s: {own:.2f} ms -> {'within' if own <= 1.0 else 'over'} 1 ms")
    print(f"runs still disturbed after {RETRIES} repeats (others above {QUIET_CORES:g} cores): {b.disturbed}")
    print("gateway CPU: the gateway's processes during its runs, in cores; other load: the most CPU any "
          "one run of that rate saw used by processes other than nginx, the gateway and the load generator.")


if __name__ == "__main__":
    main()
