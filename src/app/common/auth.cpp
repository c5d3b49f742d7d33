#include "app/common/auth.hpp"

#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstring>

namespace agente::app {

namespace {

// Failed authentications are anyone's to cause: this many lines per window per worker, then a count.
constexpr int refusal_log_burst = 10;
constexpr auto refusal_log_window = std::chrono::seconds(10);

std::vector<std::string> one_or_none(const std::string& token) {
    if (token.empty()) return {};
    return {token};
}

}  // namespace

KeySet::KeySet(const std::vector<std::string>& keys) {
    for (const auto& k : keys) digests_.push_back(secret_digest(k));
}

int KeySet::find(std::string_view candidate) {
    if (candidate.empty()) return -1;
    std::array<unsigned char, remembered_size> padded{};
    bool fits = candidate.size() <= remembered_size;   // the candidate's own length: nothing secret
    if (fits) {
        std::memcpy(padded.data(), candidate.data(), candidate.size());
        if (int index = recall(padded, candidate.size()); index >= 0) return index;
    }
    auto d = secret_digest(candidate);
    int found = -1;
    for (int i = 0; i < int(digests_.size()); ++i) {
        int mask = -int(same_digest(digests_[std::size_t(i)], d) != 0);   // all ones on a match: no branch
        found = (found & ~mask) | (i & mask);
    }
    if (found >= 0 && fits) {
        recent_[next_slot_] = {padded, candidate.size(), found};
        next_slot_ = (next_slot_ + 1) % recent_.size();
    }
    return found;
}

int KeySet::recall(const std::array<unsigned char, remembered_size>& padded, std::size_t size) const {
    static_assert(remembered_size % sizeof(std::uint64_t) == 0);
    int found = -1;
    for (const auto& slot : recent_) {
        // Every word of every slot, OR-ed together: no early exit for a compiler to find.
        std::uint64_t diff = slot.size ^ size;
        for (std::size_t at = 0; at < remembered_size; at += sizeof(std::uint64_t)) {
            std::uint64_t a = 0, b = 0;
            std::memcpy(&a, slot.bytes.data() + at, sizeof a);
            std::memcpy(&b, padded.data() + at, sizeof b);
            diff |= a ^ b;
        }
        int mask = -int(((diff | (0 - diff)) >> 63) ^ 1);   // all ones when diff is 0
        found = (found & ~mask) | (slot.index & mask);
    }
    return found;
}

Response unauthorized(const ErrorShape& shape, std::string_view message) {
    Response r = shape(401, message);
    r.headers.push_back({"WWW-Authenticate", "Bearer"});
    return r;
}

Gatekeeper::Gatekeeper(const std::vector<std::string>& client_keys, const std::string& admin_token)
    : clients_(client_keys), admins_(one_or_none(admin_token)), log_limit_(refusal_log_burst, refusal_log_window) {}

std::optional<Response> Gatekeeper::refuse_client(const Request& r, const ErrorShape& shape) {
    int client = -1;
    return refuse_client(r, shape, client);
}

std::optional<Response> Gatekeeper::refuse_client(const Request& r, const ErrorShape& shape, int& client) {
    client = -1;
    if (clients_.empty()) return std::nullopt;
    std::string_view key = bearer_token(r.header("Authorization"));
    client = clients_.find(key);
    if (client >= 0) return std::nullopt;
    log_refusal(r, key.empty() ? "no API key" : "a wrong API key");
    return unauthorized(shape, "missing or invalid API key");
}

std::optional<Response> Gatekeeper::refuse_admin(const Request& r, const ErrorShape& shape) {
    return refuse_admin(r, bearer_token(r.header("Authorization")), shape);
}

std::optional<Response> Gatekeeper::refuse_admin(const Request& r, std::string_view token, const ErrorShape& shape) {
    if (token.empty()) {
        log_refusal(r, "no admin token");
        return unauthorized(shape, "admin token required");
    }
    if (admins_.contains(token)) return std::nullopt;
    log_refusal(r, admins_.empty() ? "an admin token, and none is configured" : "a wrong admin token");
    Response forbidden = shape(403, "invalid admin token");
    return forbidden;
}

void Gatekeeper::log_refusal(const Request& r, std::string_view what) {
    auto d = log_limit_.admit(LogLimit::Clock::now());
    if (d.left_out)
        spdlog::warn("auth: {} more refused requests in the last {} s were not logged", d.left_out,
                     std::chrono::duration_cast<std::chrono::seconds>(refusal_log_window).count());
    if (d.log) spdlog::warn("auth: refused {} {} from {}: {}", r.method(), r.path(), r.remote_addr(), what);
}

}  // namespace agente::app
