#include "app/common/auth.hpp"

#include "app/common/ascii.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace agente::app {

namespace {

// Failed authentications are anyone's to cause: this many lines per window per worker, then a count.
constexpr int refusal_log_burst = 10;
constexpr auto refusal_log_window = std::chrono::seconds(10);

// Fetched once, and one context per thread: SHA256() looks the algorithm up in OpenSSL 3's provider
// tables on every call, and EVP_Digest() allocates and frees a context, together more instructions
// than hashing the key.
std::array<unsigned char, 32> digest(std::string_view s) {
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::array<unsigned char, 32> d{};
    EVP_DigestInit_ex2(ctx.get(), sha256, nullptr);
    EVP_DigestUpdate(ctx.get(), s.data(), s.size());
    EVP_DigestFinal_ex(ctx.get(), d.data(), nullptr);
    return d;
}

std::vector<std::string> one_or_none(const std::string& token) {
    if (token.empty()) return {};
    return {token};
}

}  // namespace

std::string_view bearer_token(std::string_view h) {
    constexpr std::string_view prefix = "Bearer ";
    if (h.size() <= prefix.size() || !istarts_with(h, prefix)) return {};
    h.remove_prefix(prefix.size());
    while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
    while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
    return h;
}

KeySet::KeySet(const std::vector<std::string>& keys) {
    for (const auto& k : keys) digests_.push_back(digest(k));
}

bool KeySet::contains(std::string_view candidate) const {
    auto d = digest(candidate);
    int matched = 0;
    for (const auto& k : digests_) matched |= CRYPTO_memcmp(k.data(), d.data(), d.size()) == 0;
    return matched != 0 && !candidate.empty();
}

Response unauthorized(const ErrorShape& shape, std::string_view message) {
    Response r = shape(401, message);
    r.headers.push_back({"WWW-Authenticate", "Bearer"});
    return r;
}

Gatekeeper::Gatekeeper(const std::vector<std::string>& client_keys, const std::string& admin_token)
    : clients_(client_keys), admins_(one_or_none(admin_token)), log_limit_(refusal_log_burst, refusal_log_window) {}

std::optional<Response> Gatekeeper::refuse_client(const Request& r, const ErrorShape& shape) {
    if (clients_.empty()) return std::nullopt;
    std::string_view key = bearer_token(r.header("Authorization"));
    if (clients_.contains(key)) return std::nullopt;
    log_refusal(r, key.empty() ? "no API key" : "a wrong API key");
    return unauthorized(shape, "missing or invalid API key");
}

std::optional<Response> Gatekeeper::refuse_admin(const Request& r, const ErrorShape& shape) {
    std::string_view token = bearer_token(r.header("Authorization"));
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
