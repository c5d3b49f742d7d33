// Client keys and the admin token, checked in constant time: a timing difference must not tell an
// attacker how much of a guess was right.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace agente::gateway {

// "Bearer <token>" → "<token>"; "" when the header has another shape.
std::string_view bearer_token(std::string_view authorization);

class KeySet {
public:
    explicit KeySet(const std::vector<std::string>& keys);
    bool empty() const { return digests_.empty(); }
    // Compares SHA-256 digests with CRYPTO_memcmp against every key, so neither the length nor the
    // position of a match shows in the time taken.
    bool contains(std::string_view candidate) const;

private:
    std::vector<std::array<unsigned char, 32>> digests_;
};

}  // namespace agente::gateway
