// Keeps every CPU of the machine from going idle, at the lowest priority there is: one SCHED_IDLE
// thread per CPU, each pinned, spinning on the CPU's pause hint. Any other process that wakes up
// takes the CPU at once (the scheduler preempts a SCHED_IDLE task on every wake-up, and counts its
// CPU as idle when placing tasks), so the spinners cost the measured processes nothing but what
// they would have lost to the idle loop.
//
// Why: on a VM whose guest halts idle virtual CPUs (haltpoll off), waking one waits for the host to
// run it again, over 1 ms for ~3% of wake-ups on this project's VM (bench/loadgen/stall_probe wake).
// Bare metal wakes in microseconds, and so does a guest that polls before halting (cpuidle-haltpoll,
// or idle=poll). Keeping the CPUs busy measures what the Orange Pi would see, not the VM's idle path.
//
//   keep_awake [SECONDS]   (default: until killed)
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

void spin(int cpu, std::chrono::steady_clock::time_point end) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    sched_param none{};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &none) != 0) {
        std::fprintf(stderr, "keep_awake: no SCHED_IDLE (%s)\n", std::strerror(errno));
        std::exit(1);
    }
    for (long n = 0;; ++n) {
        cpu_relax();
        if (n % 4096 == 0 && std::chrono::steady_clock::now() > end) return;
    }
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = argc > 1 ? std::atof(argv[1]) : 1e9;
    auto end = std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
    int cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    std::vector<std::thread> threads;
    for (int c = 0; c < cpus; ++c) threads.emplace_back(spin, c, end);
    for (auto& t : threads) t.join();
    return 0;
}
