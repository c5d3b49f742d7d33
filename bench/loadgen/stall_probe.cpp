// How often this machine keeps a process from running when it should. Two measures, one thread per
// CPU, each pinned:
//
//   stall_probe busy [SECONDS]   a never-sleeping loop reads the monotonic clock and counts the gaps
//                                between two readings: on an idle guest, a gap of a millisecond or
//                                more is the hypervisor running something else on that virtual CPU.
//   stall_probe wake [SECONDS]   a real-time (SCHED_FIFO) thread sleeps 500 µs at a time and counts
//                                how late it wakes. On an idle guest whose virtual CPUs halt when
//                                there is nothing to run, each wake-up waits for the host to run the
//                                halted CPU again; on this project's VM that took over 1 ms for about
//                                3% of wake-ups, far more often than the busy loop is stopped.
//
// Every request through a proxy wakes several processes (load generator, proxy, upstream), so these
// two rates are the floor under any p99 measured on the machine: no process of the guest can avoid
// them. bench/gateway/cpu_latency.py removes most of the second (see there). Default 5 s.
//
// Prints one line per CPU: mode=M cpu=N seconds=S events=E over_0.1ms=A over_1ms=B per_s_over_1ms=C
// over_5ms=D max_ms=F (events: clock readings or wake-ups; over_*: gaps or late wake-ups)
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Delays {
    long events = 0, over_100us = 0, over_1ms = 0, over_5ms = 0;
    Clock::duration max{};

    void add(Clock::duration d) {
        ++events;
        over_100us += d > 100us;
        over_1ms += d > 1ms;
        over_5ms += d > 5ms;
        max = std::max(max, d);
    }
};

void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

Clock::time_point end_after(double seconds) {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

Delays busy(int cpu, double seconds) {
    pin(cpu);
    Delays d;
    auto prev = Clock::now();
    for (auto now = prev, end = end_after(seconds); now < end; prev = now) {
        now = Clock::now();
        d.add(now - prev);
    }
    return d;
}

// Absolute deadlines, so a late wake-up does not shift the ones after it; a deadline already
// passed is skipped rather than counted again.
Delays wake(int cpu, double seconds) {
    pin(cpu);
    sched_param rt{};
    rt.sched_priority = 50;
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt) != 0)
        std::fprintf(stderr, "stall_probe: no SCHED_FIFO (%s): wake-ups also wait for other processes\n",
                     std::strerror(errno));
    constexpr auto period = 500us;
    Delays d;
    auto end = end_after(seconds);
    for (auto due = Clock::now() + period; due < end; due += period) {
        auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(due.time_since_epoch()).count();
        timespec ts{static_cast<time_t>(since_epoch / 1000000000), static_cast<long>(since_epoch % 1000000000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
        auto now = Clock::now();
        d.add(now - due);
        while (due + period < now) due += period;
    }
    return d;
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode != "busy" && mode != "wake") {
        std::fprintf(stderr, "usage: stall_probe busy|wake [SECONDS]\n");
        return 2;
    }
    double seconds = argc > 2 ? std::atof(argv[2]) : 5.0;
    auto probe = mode == "busy" ? busy : wake;
    int cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    std::vector<Delays> result(static_cast<std::size_t>(cpus));
    std::vector<std::thread> threads;
    for (int c = 0; c < cpus; ++c)
        threads.emplace_back([&result, c, seconds, probe] { result[static_cast<std::size_t>(c)] = probe(c, seconds); });
    for (auto& t : threads) t.join();
    for (int c = 0; c < cpus; ++c) {
        const Delays& d = result[static_cast<std::size_t>(c)];
        std::printf("mode=%s cpu=%d seconds=%.1f events=%ld over_0.1ms=%ld over_1ms=%ld per_s_over_1ms=%.2f "
                    "over_5ms=%ld max_ms=%.2f\n",
                    mode.c_str(), c, seconds, d.events, d.over_100us, d.over_1ms,
                    static_cast<double>(d.over_1ms) / seconds, d.over_5ms,
                    std::chrono::duration<double, std::milli>(d.max).count());
    }
    return 0;
}
