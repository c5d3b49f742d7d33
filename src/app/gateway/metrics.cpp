#include "app/gateway/metrics.hpp"

#include <map>
#include <utility>

namespace agente::gateway {

namespace {

using Clock = std::chrono::steady_clock;
constexpr char key_separator = '\x1f';

std::chrono::microseconds since(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t);
}

void observe(std::atomic<std::uint64_t>* buckets, std::atomic<std::uint64_t>& sum, std::chrono::microseconds d) {
    bump(buckets[latency_bucket(d)]);
    bump(sum, std::uint64_t(d.count()));
}

// One label's counters summed (over table entries that name the same pair, see NameTable).
struct Totals {
    std::uint64_t attempts[outcomes] = {};
    std::uint64_t retries = 0, fallbacks = 0, skipped = 0, tokens_in = 0, tokens_out = 0;
    std::uint64_t ttfb[latency_buckets] = {}, duration[latency_buckets] = {};
    std::uint64_t ttfb_sum_us = 0, duration_sum_us = 0;

    void add(const UpstreamCounters& c) {
        for (int o = 0; o < outcomes; ++o) attempts[o] += c.attempts[o].load();
        retries += c.retries.load();
        fallbacks += c.fallbacks.load();
        skipped += c.skipped.load();
        tokens_in += c.tokens_in.load();
        tokens_out += c.tokens_out.load();
        for (std::size_t b = 0; b < latency_buckets; ++b) {
            ttfb[b] += c.ttfb_buckets[b].load();
            duration[b] += c.duration_buckets[b].load();
        }
        ttfb_sum_us += c.ttfb_sum_us.load();
        duration_sum_us += c.duration_sum_us.load();
    }
};

std::uint64_t sum(const std::uint64_t (&buckets)[latency_buckets]) {
    std::uint64_t n = 0;
    for (auto b : buckets) n += b;
    return n;
}

}  // namespace

const char* outcome_name(Outcome o) {
    switch (o) {
        case Outcome::ok: return "ok";
        case Outcome::client_error: return "client_error";
        case Outcome::rate_limited: return "rate_limited";
        case Outcome::server_error: return "server_error";
        case Outcome::timeout: return "timeout";
        case Outcome::connect_error: return "connect_error";
        case Outcome::transport_error: return "transport_error";
        case Outcome::cancelled: return "cancelled";
        case Outcome::end: break;
    }
    return "transport_error";
}

Outcome outcome_of(int status, CallError error) {
    switch (error) {
        case CallError::none: break;
        case CallError::timeout: return Outcome::timeout;
        case CallError::connect: return Outcome::connect_error;
        case CallError::io:
        case CallError::protocol:
        case CallError::tls: return Outcome::transport_error;
    }
    if (status == 429) return Outcome::rate_limited;
    if (status >= 500) return Outcome::server_error;
    if (status >= 400) return Outcome::client_error;
    return Outcome::ok;
}

std::string upstream_key(std::string_view provider, std::string_view model) {
    std::string key(provider);
    key += key_separator;
    key += model;
    return key;
}

void AttemptMeter::first_byte() {
    if (cells_) observe(cells_->ttfb_buckets, cells_->ttfb_sum_us, since(start_));
}

void AttemptMeter::end(Outcome outcome) {
    if (!cells_ || ended_) return;
    ended_ = true;
    bump(cells_->attempts[int(outcome)]);
    observe(cells_->duration_buckets, cells_->duration_sum_us, since(start_));
}

void AttemptMeter::tokens(const TokenUsage& usage) {
    if (!cells_) return;
    bump(cells_->tokens_in, usage.in);
    bump(cells_->tokens_out, usage.out);
}

void write_upstream_metrics(MetricsText& out, const UpstreamNames& names, const GatewayCounters& total) {
    std::map<std::pair<std::string, std::string>, Totals> by_pair;
    for (int i = 0; i <= max_upstream_labels; ++i) {
        std::pair<std::string, std::string> pair{"other", "other"};
        if (i < max_upstream_labels) {
            std::string_view key = names.name(i);
            if (key.empty()) continue;
            auto sep = key.find(key_separator);
            pair = {std::string(key.substr(0, sep)), std::string(key.substr(sep + 1))};
        }
        Totals& t = by_pair[pair];
        t.add(total.upstreams[i]);
    }
    std::erase_if(by_pair, [](const auto& e) {
        const Totals& t = e.second;
        std::uint64_t any = t.retries + t.fallbacks + t.skipped;
        for (auto a : t.attempts) any += a;
        return any == 0 && e.first.first == "other";
    });

    out.family("agente_upstream_requests_total", "counter",
               "Attempts at an upstream, by provider, upstream model and outcome (retries and fallbacks each count).");
    for (const auto& [pair, t] : by_pair)
        for (int o = 0; o < outcomes; ++o)
            if (t.attempts[o])
                out.sample("agente_upstream_requests_total",
                           {{"provider", pair.first}, {"model", pair.second}, {"outcome", outcome_name(Outcome(o))}},
                           t.attempts[o]);
    auto per_pair = [&](const char* name, const char* help, std::uint64_t Totals::*field) {
        out.family(name, "counter", help);
        for (const auto& [pair, t] : by_pair)
            out.sample(name, {{"provider", pair.first}, {"model", pair.second}}, t.*field);
    };
    per_pair("agente_upstream_retries_total", "Attempts repeated at the same target before its first byte.",
             &Totals::retries);
    per_pair("agente_upstream_fallbacks_total", "Requests that moved on from this target to the model's next one.",
             &Totals::fallbacks);
    per_pair("agente_upstream_breaker_skips_total", "Attempts not sent: the provider's circuit breaker was open.",
             &Totals::skipped);
    out.family("agente_upstream_tokens_total", "counter",
               "Tokens the upstream reported in its usage object, by direction (in: prompt, out: completion).");
    for (const auto& [pair, t] : by_pair) {
        out.sample("agente_upstream_tokens_total", {{"provider", pair.first}, {"model", pair.second}, {"direction", "in"}},
                   t.tokens_in);
        out.sample("agente_upstream_tokens_total", {{"provider", pair.first}, {"model", pair.second}, {"direction", "out"}},
                   t.tokens_out);
    }
    out.family("agente_upstream_ttfb_seconds", "histogram", "From an attempt's start to the upstream's response head.");
    for (const auto& [pair, t] : by_pair)
        if (sum(t.ttfb))
            out.histogram("agente_upstream_ttfb_seconds", {{"provider", pair.first}, {"model", pair.second}},
                          latency_bounds_s, t.ttfb, double(t.ttfb_sum_us) / 1e6);
    out.family("agente_upstream_duration_seconds", "histogram", "From an attempt's start to its end (a stream's last byte).");
    for (const auto& [pair, t] : by_pair)
        if (sum(t.duration))
            out.histogram("agente_upstream_duration_seconds", {{"provider", pair.first}, {"model", pair.second}},
                          latency_bounds_s, t.duration, double(t.duration_sum_us) / 1e6);
}

}  // namespace agente::gateway
