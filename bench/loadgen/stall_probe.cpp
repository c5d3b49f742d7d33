// How often this machine stops running a process that never sleeps: one busy thread per CPU, each
// pinned, reads the monotonic clock in a tight loop and counts the gaps between two readings. On an
// otherwise idle machine a gap of a millisecond or more is the hypervisor (or the host) running
// something else on that virtual CPU: no process of the guest can see it coming or avoid it, so it is
// the floor under any p99 measured here. The gateway bench runs this before its fixed-rate runs so
// that the p99 figures are read against the machine's own stalls.
//
//   stall_probe [SECONDS]   (default 5; both CPUs stay busy for that long)
//
// Prints one line per CPU: cpu=N seconds=S stalls_over_0.1ms=A stalls_over_1ms=B per_s_over_1ms=C
// stalls_over_5ms=D max_ms=E
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Gaps {
    long over_100us = 0, over_1ms = 0, over_5ms = 0;
    Clock::duration max{};
};

Gaps watch(int cpu, double seconds) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    Gaps g;
    auto prev = Clock::now();
    auto end = prev + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (auto now = prev; now < end; prev = now) {
        now = Clock::now();
        auto gap = now - prev;
        g.over_100us += gap > std::chrono::microseconds(100);
        g.over_1ms += gap > std::chrono::milliseconds(1);
        g.over_5ms += gap > std::chrono::milliseconds(5);
        g.max = std::max(g.max, gap);
    }
    return g;
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
    int cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    std::vector<Gaps> result(static_cast<std::size_t>(cpus));
    std::vector<std::thread> threads;
    for (int c = 0; c < cpus; ++c)
        threads.emplace_back([&result, c, seconds] { result[static_cast<std::size_t>(c)] = watch(c, seconds); });
    for (auto& t : threads) t.join();
    for (int c = 0; c < cpus; ++c) {
        const Gaps& g = result[static_cast<std::size_t>(c)];
        std::printf("cpu=%d seconds=%.1f stalls_over_0.1ms=%ld stalls_over_1ms=%ld per_s_over_1ms=%.2f "
                    "stalls_over_5ms=%ld max_ms=%.2f\n",
                    c, seconds, g.over_100us, g.over_1ms, static_cast<double>(g.over_1ms) / seconds, g.over_5ms,
                    std::chrono::duration<double, std::milli>(g.max).count());
    }
    return 0;
}
