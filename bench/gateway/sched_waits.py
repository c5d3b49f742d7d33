#!/usr/bin/env python3
"""What the scheduler did to the processes on a request's path during a run, from a system-wide trace
of context switches and wake-ups (`perf record -e sched:sched_switch -e sched:sched_wakeup -a`):

- waits: how often a thread was runnable (woken, or preempted while running) and yet did not run for
  1 ms or more. Every request in flight through that thread is late by as much; this is the part of
  a p99 that no code of the thread can remove.
- stints: how often a thread ran 1 ms or more without a break: a backlog worked off, or the host
  stopping the vCPU under it (the trace cannot tell the two apart).

Needs perf (Debian's linux-perf) and root; record() returns None without them.
Usage as a script: sched_waits.py TRACE.txt NAME=TID,TID... [NAME=...] (TRACE.txt from `perf script`)."""
import os
import re
import shutil
import subprocess
import sys

SWITCH = re.compile(r"\s([0-9]+\.[0-9]+):\s+sched:sched_switch: prev_comm=.*? prev_pid=(\d+) prev_prio=\d+ "
                    r"prev_state=(\S+) ==> next_comm=.*? next_pid=(\d+) ")
WAKEUP = re.compile(r"\s([0-9]+\.[0-9]+):\s+sched:sched_wakeup: comm=.*? pid=(\d+) ")


def record(seconds, data_path):
    """Traces the whole machine for `seconds`; returns the trace as text, or None when perf is missing
    or refused."""
    if not shutil.which("perf"):
        return None
    rec = subprocess.run(["perf", "record", "-q", "-a", "-e", "sched:sched_switch", "-e", "sched:sched_wakeup",
                          "-o", data_path, "--", "sleep", str(seconds)], capture_output=True, text=True)
    if rec.returncode != 0:
        print(f"sched_waits: perf record failed: {rec.stderr.strip()[:200]}", file=sys.stderr)
        return None
    out = subprocess.run(["perf", "script", "-i", data_path], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def summarize(text, groups, threshold_ms=1.0):
    """{name: set of thread ids} -> {name: {"waits", "max_wait_ms", "stints", "seconds"}}: waits and
    stints of threshold_ms or more, summed over the group's threads."""
    owner = {tid: name for name, tids in groups.items() for tid in tids}
    stats = {name: {"waits": 0, "max_wait_ms": 0.0, "stints": 0} for name in groups}
    ready, running = {}, {}  # tid -> since when runnable / on a CPU
    first = last = None
    for line in text.splitlines():
        m = WAKEUP.search(line)
        if m:
            t, tid = float(m.group(1)), int(m.group(2))
            if tid in owner:
                ready.setdefault(tid, t)
            continue
        m = SWITCH.search(line)
        if not m:
            continue
        t, prev, state, nxt = float(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4))
        first, last = first or t, t
        if prev in owner:
            since = running.pop(prev, None)
            if since is not None and (t - since) * 1000 >= threshold_ms:
                stats[owner[prev]]["stints"] += 1
            if state.startswith("R"):  # preempted: still runnable
                ready[prev] = t
        if nxt in owner:
            running[nxt] = t
            since = ready.pop(nxt, None)
            if since is not None:
                waited = (t - since) * 1000
                s = stats[owner[nxt]]
                s["waits"] += waited >= threshold_ms
                s["max_wait_ms"] = max(s["max_wait_ms"], waited)
    seconds = (last - first) if first is not None else 0.0
    for s in stats.values():
        s["seconds"] = seconds
    return stats


def per_second(stats, key):
    """A group's count of `key` ("waits" or "stints") per traced second."""
    return stats[key] / stats["seconds"] if stats["seconds"] else 0.0


def threads(pids):
    """Every thread id of the processes."""
    out = set()
    for pid in pids:
        try:
            out.update(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except FileNotFoundError:
            pass
    return out


def main():
    text = open(sys.argv[1]).read()
    groups = {}
    for arg in sys.argv[2:]:
        name, tids = arg.split("=", 1)
        groups[name] = {int(x) for x in tids.split(",") if x}
    for name, s in summarize(text, groups).items():
        print(f"{name}: waits >= 1 ms {per_second(s, 'waits'):.1f}/s (longest {s['max_wait_ms']:.2f} ms), "
              f"stints >= 1 ms {per_second(s, 'stints'):.1f}/s over {s['seconds']:.1f} s")


if __name__ == "__main__":
    main()
