// What a client key's limits cost a request: ClientLimiter::admit() and charge() over the shared
// regions laid out as the server does (PrivateMemory, all 384 worker slots), against a key without
// limits. Single-threaded, so no CAS is ever retried: the cost on a quiet server; one retry costs
// about one more admission. Prints ns per call; docs/benchmarks.md has the figures.
//   cmake --build build --target key-limits-bench && build/bench/key-limits-bench
#include "app/gateway/client_limits.hpp"

#include <chrono>
#include <cstdio>

using namespace agente;
using namespace agente::gateway;

namespace {

constexpr int calls = 2'000'000;

template <class F>
double ns_per_call(F&& f) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) f(i);
    auto took = std::chrono::steady_clock::now() - start;
    return double(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()) / calls;
}

}  // namespace

int main() {
    SharedLayout layout;
    ClientRegions regions = declare_client_regions(layout);
    PrivateMemory memory(layout);
    GatewaySettings settings;
    settings.clients.push_back({"open", "k0", {}});
    ClientKey limited{"limited", "k1", {}};
    limited.limits = {1'000'000'000, 1'000'000'000'000, 100'000};
    settings.clients.push_back(limited);
    assign_client_cells(*regions.names, settings);
    ClientLimiter limiter(regions, 0, settings.clients);
    TokenUsage used{30, 60};

    std::printf("no limits, whole answer:   %6.1f ns (admit + charge)\n",
                ns_per_call([&](int) { limiter.admit(0, false); limiter.charge(0, used); }));
    std::printf("rpm + tpm, whole answer:   %6.1f ns (admit + charge)\n",
                ns_per_call([&](int) { limiter.admit(1, false); limiter.charge(1, used); }));
    std::printf("rpm + tpm + streams, stream: %6.1f ns (admit + release + charge)\n", ns_per_call([&](int) {
                    limiter.admit(1, true);
                    limiter.release_stream(1);
                    limiter.charge(1, used);
                }));
    Admission a = limiter.admit(1, false);
    std::printf("headers of an admission:   %6.1f ns (rate_headers)\n",
                ns_per_call([&](int) { auto h = rate_headers(a); (void)h; }));
    return 0;
}
