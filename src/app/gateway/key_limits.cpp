// The arithmetic of the allowances (key_limits.hpp says why one instant per limit).
#include "app/gateway/key_limits.hpp"

#include <algorithm>

namespace agente::gateway {

namespace {

using std::chrono::seconds;

// What spending n units of a per-minute limit costs in time: n x 60 s / limit, without overflow
// (a large answer's tokens times a minute in nanoseconds passes 2^63).
nanoseconds cost(std::int64_t limit, std::uint64_t n) {
    __int128 ns = __int128(n) * rate_window.count() / limit;
    return nanoseconds(std::int64_t(std::min<__int128>(ns, std::int64_t(1) << 62)));
}

// Units left now of an allowance that is full again at `full_at`.
std::int64_t units_left(std::int64_t limit, nanoseconds spent) {
    nanoseconds room = rate_window - spent;
    if (room <= nanoseconds(0)) return 0;
    return std::int64_t(__int128(room.count()) * limit / rate_window.count());
}

// Whole seconds, rounded up: a client that waits that long finds room. At least one.
seconds wait_of(nanoseconds span) {
    auto s = std::chrono::ceil<seconds>(span);
    return std::max(s, seconds(1));
}

}  // namespace

const char* limit_name(Limit limit) {
    switch (limit) {
        case Limit::requests: return "requests";
        case Limit::tokens: return "tokens";
        case Limit::streams: return "streams";
        case Limit::none: break;
    }
    return "none";
}

Admission admit(const KeyLimits& limits, const KeyState& state, nanoseconds now, bool stream) {
    Admission a;
    a.requests_full_at = state.requests_full_at;
    seconds longest{0};
    auto exceeded = [&](Limit which, seconds wait) {
        if (a.refused != Limit::none && wait <= longest) return;
        a.refused = which;
        longest = wait;
    };

    if (std::int64_t rpm = limits.requests_per_minute) {
        nanoseconds base = std::max(state.requests_full_at, now);
        nanoseconds after = base + cost(rpm, 1);
        a.requests.limit = rpm;
        if (after - now <= rate_window) {
            a.requests_full_at = after;
            a.requests.remaining = units_left(rpm, after - now);
            a.requests.reset = after - now;
        } else {
            a.requests.remaining = 0;
            a.requests.reset = base - now;
            exceeded(Limit::requests, wait_of(after - now - rate_window));
        }
    }
    if (std::int64_t tpm = limits.tokens_per_minute) {
        nanoseconds spent = std::max(state.tokens_full_at, now) - now;
        a.tokens.limit = tpm;
        a.tokens.remaining = units_left(tpm, spent);
        a.tokens.reset = spent;
        if (a.tokens.remaining == 0) exceeded(Limit::tokens, wait_of(spent + cost(tpm, 1) - rate_window));
    }
    // A stream slot frees as soon as any of the key's streams ends: no better guess than a second.
    if (stream && limits.max_streams && state.streams >= limits.max_streams) exceeded(Limit::streams, seconds(1));

    if (a.refused != Limit::none) {
        a.retry_after = longest;
        a.requests_full_at = state.requests_full_at;   // a refused request spends nothing
    }
    return a;
}

nanoseconds charge_tokens(const KeyLimits& limits, nanoseconds tokens_full_at, nanoseconds now, std::uint64_t tokens) {
    if (!limits.tokens_per_minute || !tokens) return tokens_full_at;
    return std::max(tokens_full_at, now) + cost(limits.tokens_per_minute, tokens);
}

std::string reset_text(nanoseconds span) {
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(std::max(span, nanoseconds(0))).count();
    if (ms < 1000) return std::to_string(ms) + "ms";
    std::string out;
    if (ms >= 60'000) out = std::to_string(ms / 60'000) + "m";
    ms %= 60'000;
    out += std::to_string(ms / 1000);
    if (int frac = int(ms % 1000)) {
        std::string digits = std::to_string(1000 + frac).substr(1);   // three digits, leading zeros kept
        while (digits.back() == '0') digits.pop_back();
        out += "." + digits;
    }
    return out + "s";
}

}  // namespace agente::gateway
