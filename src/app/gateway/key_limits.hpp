// Whether a client key's request may go on, from its limits and what the shared cells hold now: a
// pure function of numbers, so that its tests read as the rules (tests/unit/key_limits_test.cpp).
//
// Requests and tokens per minute work as OpenAI describes its own limits: a minute's allowance that
// refills continuously, not a counter reset on the minute (which lets a client spend two minutes'
// worth across the boundary). Each is one number per key, the instant at which its allowance would
// be full again if nothing more were spent (GCRA, the ATM cell-rate algorithm's "theoretical arrival
// time"): spending n units moves it n x (60 s / limit) later, and what is spent must keep it within a
// minute of now. One number per limit is one compare-and-swap across workers, no lock.
//
// Tokens are known only once the upstream answered (its usage object): a request gets in while any
// token of the allowance is left, its tokens are charged when it ends, possibly past the allowance,
// and the requests after it wait until it has refilled past that debt.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace agente::gateway {

using std::chrono::nanoseconds;

// The span the allowances are per.
inline constexpr nanoseconds rate_window = std::chrono::minutes(1);

struct KeyLimits {
    std::int64_t requests_per_minute = 0;   // 0: no limit
    std::int64_t tokens_per_minute = 0;     // 0: no limit
    int max_streams = 0;                    // concurrent streamed answers; 0: no limit of its own
    bool any() const { return requests_per_minute || tokens_per_minute || max_streams; }
};

enum class Limit : int { none, requests, tokens, streams };
inline constexpr int limit_kinds = 3;   // requests, tokens, streams
const char* limit_name(Limit limit);    // "requests", "tokens", "streams"

// What the shared cells say about one key now.
struct KeyState {
    nanoseconds requests_full_at{0};   // on the steady clock; in the past: the allowance is full
    nanoseconds tokens_full_at{0};
    int streams = 0;                   // its streams open now on every worker, this request's not counted
};

// One limit's figures for OpenAI's x-ratelimit-{limit,remaining,reset}-* headers.
struct RateFigures {
    std::int64_t limit = 0;            // 0: the key has no such limit (no headers)
    std::int64_t remaining = 0;        // left now, this request's share spent
    nanoseconds reset{0};              // until the allowance is full again
};

struct Admission {
    Limit refused = Limit::none;       // none: the request goes on
    std::chrono::seconds retry_after{0};   // refused: when every exceeded limit has room again (>= 1 s)
    nanoseconds requests_full_at{0};   // admitted: what the requests cell must hold from now on
    RateFigures requests, tokens;
};

// `stream`: the request asks for a streamed answer (only those count against max_streams).
Admission admit(const KeyLimits& limits, const KeyState& state, nanoseconds now, bool stream);

// The tokens cell after a request that used `tokens` ended at `now`.
nanoseconds charge_tokens(const KeyLimits& limits, nanoseconds tokens_full_at, nanoseconds now, std::uint64_t tokens);

// A span as OpenAI writes its reset headers: "20ms", "1s", "1.5s", "6m0s".
std::string reset_text(nanoseconds span);

}  // namespace agente::gateway
