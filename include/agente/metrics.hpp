// Prometheus' text exposition format (version 0.0.4), written by whichever worker answers GET /metrics
// from counters that every worker keeps in its own shared cells (agente/shared.hpp): the core's, then
// the app's (App::write_metrics). Counters and per-bucket counts live per worker and are summed and
// cumulated here, at scrape time; label names are fixed and label values come from closed sets.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace agente {

using MetricLabel = std::pair<std::string_view, std::string_view>;
using MetricLabels = std::initializer_list<MetricLabel>;

class MetricsText {
public:
    // "# HELP" and "# TYPE" of a family (type: counter, gauge, histogram); its samples follow.
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, MetricLabels labels, std::uint64_t value);
    void sample(std::string_view name, MetricLabels labels, std::int64_t value);
    void sample(std::string_view name, MetricLabels labels, double value);
    // A histogram's series: `counts` holds one count per bucket, not cumulated, `bounds.size() + 1` of
    // them (the last above every bound); they are cumulated into `_bucket{le=...}`, then `_sum` and
    // `_count` (the last `le` is "+Inf", equal to the count).
    void histogram(std::string_view name, MetricLabels labels, std::span<const double> bounds,
                   std::span<const std::uint64_t> counts, double sum);

    const std::string& text() const { return out_; }
    std::string take() { return std::move(out_); }

    // The text's media type, for Content-Type.
    static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

private:
    void series(std::string_view name, MetricLabels labels, std::string_view extra_name = {},
                std::string_view extra_value = {});
    std::string out_;
};

// Bucket bounds for latencies: a millisecond to five minutes (an LLM stream may run that long). In
// whole microseconds, so that no floating point is done on a request's path; in seconds for the text.
inline constexpr std::int64_t latency_bounds_us[] = {1'000,     2'500,     5'000,      10'000,     25'000,     50'000,
                                                     100'000,   250'000,   500'000,    1'000'000,  2'500'000,  5'000'000,
                                                     10'000'000, 30'000'000, 60'000'000, 120'000'000, 300'000'000};
inline constexpr std::size_t latency_buckets = std::size(latency_bounds_us) + 1;
inline constexpr auto latency_bounds_s = [] {
    std::array<double, std::size(latency_bounds_us)> s{};
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = double(latency_bounds_us[i]) / 1e6;
    return s;
}();

// The bucket of a latency: the first whose bound is not below it; the last is above every bound.
inline std::size_t latency_bucket(std::chrono::microseconds value) {
    std::size_t i = 0;
    while (i < std::size(latency_bounds_us) && value.count() > latency_bounds_us[i]) ++i;
    return i;
}

}  // namespace agente
