#include "app/gateway/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace agente::gateway {

namespace {

// Fetched once: SHA256() looks the algorithm up in OpenSSL 3's provider tables on every call,
// which cost ~10k instructions per request, more than hashing the key.
std::array<unsigned char, 32> digest(std::string_view s) {
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    std::array<unsigned char, 32> d{};
    EVP_Digest(s.data(), s.size(), d.data(), nullptr, sha256, nullptr);
    return d;
}

}  // namespace

std::string_view bearer_token(std::string_view h) {
    constexpr std::string_view prefix = "Bearer ";
    if (h.size() <= prefix.size()) return {};
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(h[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) return {};
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
