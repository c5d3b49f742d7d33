#!/usr/bin/env python3
"""Fixed-rate (open-loop) comparison of a fast upstream (nginx, canned answers) called directly, through
nginx's own reverse proxy (the peer proxy), and through the gateway.

0. Runs bench/loadgen/stall_probe on the idle machine: how often a never-sleeping process is stopped
   for over 1 ms by the hypervisor, and how often a sleeping one wakes over 1 ms late, without and
   with a CPU latency request of 0 (cpu_latency.py). Then holds that request for every run below
   (unless --let-cpus-halt): idle virtual CPUs poll instead of halting, whose slow wake-ups would
   otherwise dominate every p99 (bare metal, like the Orange Pi, wakes in microseconds). What stays
   is the hypervisor's steal, reported per run.
1. Finds the highest rate the gateway sustains with bench/loadgen (doubling, bisecting, then climbing
   on in 3% steps until a rate fails: a stall through a probe no longer ends the search), and the
   same for the peer proxy: a rate is sustained when the achieved rate is within 1% of the offered
   one, every request was answered within the run, and p99 stays under SUSTAIN_P99_MS (a queue that
   keeps growing pushes it to hundreds of ms within seconds), in one of two tries.
2. Drives the three paths at the same fixed shares of the gateway's highest rate, interleaved (the
   order of the paths rotates from one round to the next), and prints a markdown table of the medians
   over rounds, with each proxy's overhead (its percentile minus the direct one). Many short rounds
   and their medians, because single runs on a shared VM scatter by milliseconds at p99.
3. The same for streamed answers (SSE) at one share, with the time to the first byte.
4. The same with a chat-sized request body (--chat-body, ~21 KB) at one share: the short body of
   the runs above leaves out what reading and forwarding a real request costs.
5. One more run per path at --trace-share (0: none) with the machine's scheduling traced
   (sched_waits.py, needs perf): how often the load generator, the upstream and the proxy waited for
   a CPU, to tell the machine's part of a p99 from the proxy's own.

With --peer-as-gateway (run.sh with BENCH_AA=1) the port given as --gateway is a second nginx proxy,
the same as the first: an A/A run, which shows how far two identical proxies' figures fall apart on
this machine, i.e. which differences between the gateway and nginx's proxy the bench can settle.

Usage: fixed_rate.py --loadgen BIN --stall-probe BIN --direct PORT --proxy PORT --gateway PORT
                     --body FILE --stream-body FILE --gw-pids P,P --proxy-pids P --up-pids P,P
                     [--rounds 5] [--duration 6] [--shares 25,50,75,90] [--stream-share 50]
                     [--chat-body FILE] [--chat-share 20] [--max-rate R] [--trace-share 75] [--let-cpus-halt]
                     [--peer-as-gateway]
Raw loadgen lines go to stderr (and to --raw FILE when given)."""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cpu_latency
import sched_waits

SUSTAIN_P99_MS = 10.0
TICK = os.sysconf("SC_CLK_TCK")
QUIET_CORES = float(os.environ.get("BENCH_QUIET_CORES", "0.15"))  # other load that makes a run disturbed
QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "1200"))  # at most this long per wait
RETRIES = int(os.environ.get("BENCH_RETRY_DISTURBED", "3"))
PATHS = ("direct", "nginx proxy", "gateway")
PROXIES = ("nginx proxy", "gateway")
P99_MARGIN_MS = 0.5  # issue 17: the gateway's p99 overhead at most nginx proxy's + this
CHAT = "/v1/chat/completions"
STREAM_DIRECT = "/v1/stream/chat/completions"  # the upstream's canned SSE answer


def proc_cpu(pids):
    """CPU seconds used so far by the processes' threads: the scheduler's own nanosecond count
    (schedstat), since tick-sampled utime/stime are too coarse (and on this VM, biased) for the tens
    of microseconds a request costs."""
    total = 0
    for pid in pids:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total / 1e9


def cpu_times():
    """The machine's busy seconds (user + nice + system; irq/softirq apart) and the seconds the
    hypervisor stole from its virtual CPUs (ran something else while the guest had work), over all
    CPUs so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2]) / TICK, v[7] / TICK


def with_children(pids):
    out = list(pids)
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
        b0 = cpu_times()[0]
        time.sleep(1)
        calm = calm + 1 if cpu_times()[0] - b0 < QUIET_CORES else 0


def pids(arg):
    return [int(p) for p in arg.split(",") if p]


class Bench:
    def __init__(self, a):
        self.a = a
        self.raw = open(a.raw, "a") if a.raw else None
        self.port = {"direct": a.direct, "nginx proxy": a.proxy, "gateway": a.gateway}
        self.pids = {"direct": [], "nginx proxy": pids(a.proxy_pids), "gateway": pids(a.gw_pids)}
        self.up_pids = pids(a.up_pids)
        self.disturbed = 0

    def log(self, line):
        print(line, file=sys.stderr, flush=True)
        if self.raw:
            print(line, file=self.raw, flush=True)

    def load(self, path, rate, duration, warmup, stream=False, body=None):
        """One run at a quiet moment; repeated (RETRIES times at most) while others used more than
        QUIET_CORES during it; the least disturbed attempt is kept."""
        best = None
        for _ in range(RETRIES + 1):
            wait_quiet()
            r = self.load_once(path, rate, duration, warmup, stream, body)
            if best is None or r["other_cores"] < best["other_cores"]:
                best = r
            if r["other_cores"] < QUIET_CORES:
                break
        self.disturbed += best["other_cores"] >= QUIET_CORES
        return best

    def loadgen_cmd(self, path, rate, duration, warmup, stream=False, body=None):
        # The gateway maps a stream by its model; a proxy passes the upstream's own path through.
        url = STREAM_DIRECT if stream and (path != "gateway" or self.a.peer_as_gateway) else CHAT
        return [self.a.loadgen, "--port", str(self.port[path]), "--path", url,
                "--body-file", body or (self.a.stream_body if stream else self.a.body),
                "--header", "Content-Type: application/json", "--header", "Authorization: Bearer bench-key",
                "--rate", str(rate), "--duration", str(duration), "--warmup", str(warmup),
                "--connections", str(self.a.connections), "--label", path.replace(" ", "_"),
                "--record-header", "x-agente-overhead-duration-ms"]

    @staticmethod
    def loadgen_result(path, rate, returncode, stdout, stderr):
        if returncode == 1 or not stdout.strip():
            sys.exit(f"loadgen failed ({path} at {rate}/s): {stderr.strip()}")
        r = dict(kv.split("=", 1) for kv in stdout.split())
        return {k: v if k == "label" else float(v) for k, v in r.items()}

    def load_once(self, path, rate, duration, warmup, stream, body):
        proxy, up = with_children(self.pids[path]), with_children(self.up_pids)
        px0, up0, busy0, steal0 = proc_cpu(proxy), proc_cpu(up), *cpu_times()
        p = subprocess.run(self.loadgen_cmd(path, rate, duration, warmup, stream, body), capture_output=True, text=True)
        px1, up1, busy1, steal1 = proc_cpu(proxy), proc_cpu(up), *cpu_times()
        r = self.loadgen_result(path, rate, p.returncode, p.stdout, p.stderr)
        r["proxy_cpu_s"], r["upstream_cpu_s"] = px1 - px0, up1 - up0
        # CPU of everything else on the machine during the run, in cores (tick-based /proc/stat: rough).
        ours = (px1 - px0) + (up1 - up0) + r["cpu_s"]
        r["other_cores"] = max(0.0, (busy1 - busy0) - ours) / (duration + warmup)
        r["steal_pct"] = 100 * (steal1 - steal0) / (os.cpu_count() * (duration + warmup))
        self.log(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
        return r

    def sustained(self, path, rate):
        """A rate that fails is tried once more: a queue that cannot drain fails every time, while one
        burst of the host's steal (2-4% of a probe's time, seen) can fail a probe that a second passes."""
        for _ in range(2):
            r = self.load(path, rate, self.a.probe_seconds, 1)
            if r["unfinished"] == 0 and r["achieved"] >= 0.99 * rate and r["p99"] <= SUSTAIN_P99_MS:
                return True
        return False

    def find_max(self, path):
        lo, hi, rate = 0, None, 4000
        while hi is None:
            if self.sustained(path, rate):
                lo, rate = rate, rate * 2
            else:
                hi = rate
            if rate > 400000:
                sys.exit("no upper bound found")
        while hi - lo > max(500, lo * 0.03):
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.sustained(path, mid) else (lo, mid)
        # A bisection never revisits a rate it gave up on, so one host stall through both tries of a
        # high probe cut the search short (18,000/s one run, 24,500/s the next, same code). Climb on
        # from what it found, a step at a time, until a rate fails again.
        step = max(500, int(lo * 0.03))
        while self.sustained(path, lo + step):
            lo += step
        return lo // 100 * 100

    def traced(self, path, rate):
        """One run with the whole machine's scheduling traced over its counted part (sched_waits.py):
        the loadgen result, and the waits and stints of the load generator, the upstream and the
        proxy; None without perf."""
        wait_quiet()
        lg = subprocess.Popen(self.loadgen_cmd(path, rate, self.a.duration, self.a.warmup),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(self.a.warmup + 0.5)
        groups = {"load generator": sched_waits.threads([lg.pid]),
                  "upstream": sched_waits.threads(with_children(self.up_pids)),
                  "proxy": sched_waits.threads(with_children(self.pids[path]))}
        with tempfile.TemporaryDirectory() as d:
            text = sched_waits.record(max(1.0, self.a.duration - 1.5), os.path.join(d, "perf.data"))
        out, err = lg.communicate()
        r = self.loadgen_result(path, rate, lg.returncode, out, err)
        self.log(f"traced: {path} at {rate}/s: p99={r['p99']:.3f}")
        return None if text is None else (r, sched_waits.summarize(text, groups))

    def rounds(self, rate, stream=False, body=None):
        """The three paths at one rate, a.rounds times, the order rotating per round."""
        runs = {t: [] for t in PATHS}
        for rnd in range(self.a.rounds):
            k = rnd % len(PATHS)
            for t in PATHS[k:] + PATHS[:k]:
                runs[t].append(self.load(t, rate, self.a.duration, self.a.warmup, stream, body))
        return runs


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def triple(runs, keys=("p50", "p90", "p99")):
    return [med(runs, k) for k in keys]


def fmt(xs, sign=False):
    return " / ".join(("%+.2f" if sign else "%.2f") % x for x in xs)


def cpu_us(runs, rate, a):
    """Median CPU per request of the proxy's processes, in microseconds."""
    return statistics.median(r["proxy_cpu_s"] / (rate * (a.duration + a.warmup)) * 1e6 for r in runs)


def stall_floor(probe, mode, seconds, what):
    wait_quiet()
    p = subprocess.run([probe, mode, str(seconds)], capture_output=True, text=True, check=True)
    cpus = [dict(kv.split("=", 1) for kv in line.split()) for line in p.stdout.split("\n") if line.strip()]
    per_s = ", ".join(f"cpu{c['cpu']} {float(c['per_s_over_1ms']):.1f}/s (max {float(c['max_ms']):.1f} ms)"
                      for c in cpus)
    print(f"{what} over {seconds:g} s, over 1 ms: {per_s}", flush=True)


def keep_cpus_polling(a):
    """Probes the machine's stalls, then holds the CPU latency request for the rest of the bench (its
    descriptor, closed at exit)."""
    stall_floor(a.stall_probe, "busy", 10, "host stalls of a busy loop on the idle machine")
    stall_floor(a.stall_probe, "wake", 10, "late wake-ups of a sleeping real-time thread, idle machine")
    if a.let_cpus_halt:
        return None
    fd = cpu_latency.hold()
    if fd is not None:
        stall_floor(a.stall_probe, "wake", 10, "late wake-ups of a sleeping real-time thread, idle CPUs polling")
    return fd


def at_share(top, share):
    return round(top * share / 100 / 100) * 100


def table(a, rates, results):
    """One markdown row per label of `rates` ({label: rate}), from `results` ({label: runs per path})."""
    print(f"| rate (share of max) | direct p50 / p90 / p99 | nginx proxy p50 / p90 / p99 | "
          "gateway p50 / p90 / p99 | nginx proxy overhead p50 / p90 / p99 | "
          "gateway overhead p50 / p90 / p99 | gateway's own overhead header p50 / p90 / p99 | "
          "CPU per request: nginx proxy / gateway | steal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, runs in results.items():
        d, n, g = (triple(runs[t]) for t in PATHS)
        h = triple(runs["gateway"], ("hdr_p50", "hdr_p90", "hdr_p99"))
        cpu = " / ".join(f"{cpu_us(runs[t], rates[label], a):.0f} µs" for t in PROXIES)
        steal = statistics.median(r["steal_pct"] for t in PATHS for r in runs[t])
        print(f"| {label} | {fmt(d)} | {fmt(n)} | {fmt(g)} | "
              f"{fmt([x - y for x, y in zip(n, d)], True)} | {fmt([x - y for x, y in zip(g, d)], True)} | "
              f"{fmt(h)} | {cpu} | {steal:.1f}% |")


def p99_verdicts(results):
    """Issue 17's p99 target per row of a table: the gateway's p99 overhead against nginx proxy's."""
    for label, runs in results.items():
        d, n, g = (med(runs[t], "p99") for t in PATHS)
        gap = (g - d) - (n - d)
        verdict = "met" if gap <= P99_MARGIN_MS else "NOT met"
        print(f"p99 overhead at {label}: gateway {g - d:+.2f} ms, nginx proxy {n - d:+.2f} ms, difference "
              f"{gap:+.2f} ms -> <= nginx proxy's + {P99_MARGIN_MS:g} ms {verdict}")


def where_the_tail_comes_from(b, rate, label):
    """One traced run per path at `rate`: how often each process on a request's path waited 1 ms or
    more for a CPU while runnable, against the p99 of that run."""
    rows = []
    for path in PATHS:
        got = b.traced(path, rate)
        if got is None:
            print("\n(no scheduler trace: perf is missing or not permitted)")
            return
        rows.append((path, *got))
    print(f"\nWhere the tail comes from: one more run per path at {label}, the whole machine's context "
          f"switches traced (bench/gateway/sched_waits.py) over its counted part. *Waits*: a thread was "
          f"runnable (woken, or preempted) and did not run for 1 ms or more; every request in flight "
          f"through it is late by as much. *Stints*: a proxy thread ran 1 ms or more at a stretch (a "
          f"backlog worked off, or the host stopping its vCPU).\n")
    print("| path | p99 of the run | waits >= 1 ms per s: load generator / upstream / proxy | "
          "the proxy's longest wait | the proxy's stints >= 1 ms per s |")
    print("|---|---:|---|---:|---:|")
    for path, r, st in rows:
        waits = " / ".join(f"{sched_waits.per_second(st[n], 'waits'):.1f}" if path != "direct" or n != "proxy"
                           else "–" for n in ("load generator", "upstream", "proxy"))
        longest = f"{st['proxy']['max_wait_ms']:.2f} ms" if path != "direct" else "–"
        stints = f"{sched_waits.per_second(st['proxy'], 'stints'):.1f}" if path != "direct" else "–"
        print(f"| {path} | {r['p99']:.2f} ms | {waits} | {longest} | {stints} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--stall-probe", required=True)
    ap.add_argument("--let-cpus-halt", action="store_true")
    ap.add_argument("--direct", type=int, required=True)
    ap.add_argument("--proxy", type=int, required=True)
    ap.add_argument("--gateway", type=int, required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--stream-body", required=True)
    ap.add_argument("--gw-pids", required=True)
    ap.add_argument("--proxy-pids", required=True)
    ap.add_argument("--up-pids", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=6)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--probe-seconds", type=float, default=4)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--shares", default="25,50,75,90")
    ap.add_argument("--stream-share", type=int, default=50)
    ap.add_argument("--chat-body")
    ap.add_argument("--chat-share", type=int, default=20)
    ap.add_argument("--max-rate", type=int, default=0)
    ap.add_argument("--trace-share", type=int, default=75)
    ap.add_argument("--raw")
    ap.add_argument("--peer-as-gateway", action="store_true")
    a = ap.parse_args()
    b = Bench(a)
    polling = keep_cpus_polling(a)
    try:
        measure(a, b)
    finally:
        if polling is not None:
            os.close(polling)


def measure(a, b):
    if a.peer_as_gateway:
        print("A/A run: the path called 'gateway' below is a second nginx proxy, the same as the first "
              "(same configuration, same upstream).\n")
    top = a.max_rate or b.find_max("gateway")
    peer_top = a.max_rate and "(not searched)" or f"{b.find_max('nginx proxy'):,}/s"
    print(f"highest rate sustained (achieved within 1% of offered, p99 < {SUSTAIN_P99_MS:g} ms over "
          f"{a.probe_seconds:g} s): gateway {top:,}/s, nginx proxy {peer_top}", flush=True)

    shares = [int(s) for s in a.shares.split(",")]
    rates = {f"{at_share(top, s):,}/s ({s}%)": at_share(top, s) for s in shares}
    whole = {label: b.rounds(rate) for label, rate in rates.items()}
    print(f"\n{a.rounds} rounds of {a.duration:g} s (+{a.warmup:g} s uncounted) per rate and path, the order "
          f"of the paths rotating per round, {a.connections} keep-alive connections; medians over rounds, "
          f"ms; latency from each request's scheduled send time to its last byte.\n")
    table(a, rates, whole)
    print()
    p99_verdicts(whole)

    srate = at_share(top, a.stream_share)
    slabel = f"{srate:,}/s ({a.stream_share}%), streamed"
    streamed = {slabel: b.rounds(srate, stream=True)}
    print("\nStreamed answers (SSE: one chunk, then [DONE]), same method:\n")
    table(a, {slabel: srate}, streamed)
    print()
    p99_verdicts(streamed)
    ttfb = {t: med(streamed[slabel][t], "ttfb_p50") for t in PATHS}
    print(f"\ntime to the response head at {srate:,}/s, p50: direct {ttfb['direct']:.3f} ms, nginx proxy "
          f"{ttfb['nginx proxy']:.3f} ms, gateway {ttfb['gateway']:.3f} ms")

    if a.chat_body:
        crate = at_share(top, a.chat_share)
        clabel = f"{crate:,}/s ({a.chat_share}%), {os.path.getsize(a.chat_body):,}-byte body"
        chat = {clabel: b.rounds(crate, body=a.chat_body)}
        print("\nA chat-sized request body (bench/gateway/chat_body.py: history and tools), same method:\n")
        table(a, {clabel: crate}, chat)
        print()
        p99_verdicts(chat)

    if a.trace_share:
        trate = at_share(top, a.trace_share)
        where_the_tail_comes_from(b, trate, f"{trate:,}/s ({a.trace_share}%)")

    hi = list(rates)[-1]
    over = {t: med(whole[hi][t], "p99") - med(whole[hi]["direct"], "p99") for t in PROXIES}
    print(f"\np99 overhead at {hi} of the gateway's highest sustained rate: gateway {over['gateway']:+.2f} ms, "
          f"nginx proxy {over['nginx proxy']:+.2f} ms -> target <= 1 ms "
          f"{'met' if over['gateway'] <= 1.0 else 'NOT met'}")
    own = med(whole[hi]["gateway"], "hdr_p99")
    print(f"p99 of the gateway's own overhead header (x-agente-overhead-duration-ms: time in the gateway, "
          f"upstream excluded) at {hi}: {own:.2f} ms -> {'within' if own <= 1.0 else 'over'} 1 ms")
    print(f"runs still disturbed after {RETRIES} repeats (others above {QUIET_CORES:g} cores): {b.disturbed}")
    print("CPU per request: the proxy's processes (all their threads) during its runs, from the scheduler's "
          "schedstat, over every request sent (warm-up included).")


if __name__ == "__main__":
    main()
