#include <agente/secret.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>
#include <optional>

namespace agente {

// Fetched once, and one context per thread: SHA256() looks the algorithm up in OpenSSL 3's provider
// tables on every call, and EVP_Digest() allocates and frees a context, together more instructions
// than hashing the key.
SecretDigest secret_digest(std::string_view s) {
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    SecretDigest d{};
    EVP_DigestInit_ex2(ctx.get(), sha256, nullptr);
    EVP_DigestUpdate(ctx.get(), s.data(), s.size());
    EVP_DigestFinal_ex(ctx.get(), d.data(), nullptr);
    return d;
}

bool same_digest(const SecretDigest& a, const SecretDigest& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

namespace {

// The header's value after a case-insensitive `scheme` (RFC 9110 section 11.1) and its spaces, trimmed;
// nullopt for another scheme.
std::optional<std::string_view> credentials_of(std::string_view h, std::string_view scheme) {
    if (h.size() <= scheme.size() || h[scheme.size()] != ' ') return std::nullopt;
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    for (std::size_t i = 0; i < scheme.size(); ++i)
        if (lower(h[i]) != lower(scheme[i])) return std::nullopt;
    h.remove_prefix(scheme.size());
    while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
    while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
    return h;
}

}  // namespace

std::string_view bearer_token(std::string_view h) {
    auto token = credentials_of(h, "Bearer");
    if (!token) return {};
    return *token;
}

std::string basic_password(std::string_view h) {
    auto encoded = credentials_of(h, "Basic");
    // Base64 comes in whole quads; OpenSSL's decoder would take a broken one as zero bytes.
    if (!encoded || encoded->empty() || encoded->size() % 4 != 0) return {};
    std::string decoded(encoded->size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                            reinterpret_cast<const unsigned char*>(encoded->data()), int(encoded->size()));
    if (n < 0) return {};
    // EVP_DecodeBlock counts the padding's bytes as decoded zeros.
    std::size_t pad = 0;
    for (std::size_t i = encoded->size(); i > 0 && (*encoded)[i - 1] == '=' && pad < 2; --i) ++pad;
    decoded.resize(std::size_t(n) - pad);
    auto colon = decoded.find(':');
    if (colon == std::string::npos) return {};
    return decoded.substr(colon + 1);
}

}  // namespace agente
