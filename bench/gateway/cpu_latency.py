#!/usr/bin/env python3
"""Holds a CPU latency request of 0 µs (the kernel's PM QoS, /dev/cpu_dma_latency) while it runs, so that
idle CPUs poll in the kernel's idle loop instead of halting.

Why: this VM's idle vCPUs halt, and waking a halted one waits for the host: a sleeping thread woke over
1 ms late 3–100 times a second, far more often than bare metal (the Orange Pi) does, and every request
through a proxy wakes three processes. Polling removes that without a process of its own: an idle CPU
is still idle to the scheduler, so a task that wakes or waits runs on it at once. (The spinning
SCHED_IDLE threads used before did the same for wake-ups, but a CPU running one is busy to the
scheduler: a proxy preempted there waited behind the spinner for 2–4 ms, the length of its slice,
while the other CPU ran nothing else; seen with `perf record -e sched:sched_switch`.)

The request lasts as long as the file stays open, so the machine is as it was once this process ends,
however it ends. Usage: cpu_latency.py [SECONDS] (default: until killed), or hold() from Python."""
import os
import signal
import struct
import sys
import time

PATH = "/dev/cpu_dma_latency"


def hold():
    """Opens the request; keep the returned descriptor open for as long as it should hold. None (and
    a note on stderr) when the file is missing or not writable: the bench then measures the machine's
    idle path as it is."""
    try:
        fd = os.open(PATH, os.O_WRONLY)
        os.write(fd, struct.pack("i", 0))
        return fd
    except OSError as e:
        print(f"cpu_latency: cannot hold {PATH} at 0: {e}; idle CPUs may halt", file=sys.stderr)
        return None


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    fd = hold()
    if fd is None:
        sys.exit(1)
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else None
    if seconds is None:
        signal.pause()
    else:
        time.sleep(seconds)


if __name__ == "__main__":
    main()
