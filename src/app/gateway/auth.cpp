#include "app/gateway/auth.hpp"

#include "app/gateway/ascii.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>

namespace agente::gateway {

namespace {

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
    return matched != 0;
}

}  // namespace agente::gateway
