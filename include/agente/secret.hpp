// Secrets a client presents (API keys, tokens), compared in constant time: SHA-256 digests of both
// sides compared with CRYPTO_memcmp, so that neither the length nor the position of a difference
// shows in the time taken.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace agente {

using SecretDigest = std::array<unsigned char, 32>;

SecretDigest secret_digest(std::string_view secret);
bool same_digest(const SecretDigest& a, const SecretDigest& b);

// "Bearer <token>" → "<token>"; "" when the header has another shape.
std::string_view bearer_token(std::string_view authorization);
// "Basic <base64 of user:password>" (RFC 7617) → "password"; "" when the header has another shape.
// What a browser sends after its own login prompt (GET /status).
std::string basic_password(std::string_view authorization);

}  // namespace agente
