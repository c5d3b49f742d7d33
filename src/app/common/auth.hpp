// Who may call the app's endpoints. Every endpoint that calls a provider or writes state (the
// gateway's /v1, the agent's /tasks/send and /agent/stream) takes the client keys when any is
// configured; the breaker reset takes the admin token. One Gatekeeper answers for all of them, so no
// route can forget a check another one makes, and every refusal is logged the same way (the peer's
// address, never the key), rate-limited.
//
// Keys are checked in constant time: a timing difference must not tell an attacker how much of a
// guess was right.
#pragma once

#include "app/common/log_limit.hpp"

#include <agente/handler.hpp>
#include <agente/secret.hpp>

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agente::app {

class KeySet {
public:
    explicit KeySet(const std::vector<std::string>& keys);
    bool empty() const { return digests_.empty(); }
    // Compares SHA-256 digests with CRYPTO_memcmp against every key, so neither the length nor the
    // position of a match shows in the time taken. An empty candidate (no key sent) matches nothing.
    bool contains(std::string_view candidate) { return find(candidate) >= 0; }
    // The index of the matching key in the constructor's list, -1 for none; in the same constant
    // time (when a key is listed twice: the last).
    int find(std::string_view candidate);

    // Keys up to this long are remembered once accepted (API keys are 40-170 characters).
    static constexpr std::size_t remembered_size = 192;
    static constexpr std::size_t remembered_keys = 4;

private:
    // A key this set accepted, kept so that a client's next request skips the digest (SHA-256 was
    // 3,000 of the gateway's instructions per request, on every keep-alive request with the same
    // key). Its bytes are zero-padded to a fixed width and compared whole, word by word, against
    // every slot: the time taken shows neither how much of a guess was right nor which slot held
    // it. Only whether the key was accepted lately shows, which the answer tells anyway. A reload
    // builds new sets, so a key taken out is forgotten with its set. One worker's thread uses a set.
    struct Remembered {
        std::array<unsigned char, remembered_size> bytes{};   // the key, then zeros
        std::size_t size = 0;                                 // 0: an empty slot (empty keys never match)
        int index = -1;
    };
    int recall(const std::array<unsigned char, remembered_size>& padded, std::size_t size) const;

    std::vector<SecretDigest> digests_;
    std::array<Remembered, remembered_keys> recent_{};
    std::size_t next_slot_ = 0;   // the slot the next accepted key replaces, in turn
};

// An error answer in the endpoint's own body shape (OpenAI error object, JSON-RPC error, the seed's
// plain error), from a status and a message.
using ErrorShape = std::function<Response(int status, std::string_view message)>;

// 401 with the Bearer challenge (RFC 6750), for a missing or wrong key.
Response unauthorized(const ErrorShape& shape, std::string_view message);

class Gatekeeper {
public:
    Gatekeeper(const std::vector<std::string>& client_keys, const std::string& admin_token);

    // Nothing when the request may go on: its Bearer key is a client key, or no client key is
    // configured (the endpoints are open, as the seeds' were). Otherwise the 401 to answer, in
    // `shape`; the refusal is logged.
    std::optional<Response> refuse_client(const Request& request, const ErrorShape& shape);
    // The same, telling which client key it was (its index in `client_keys`; -1 when open).
    std::optional<Response> refuse_client(const Request& request, const ErrorShape& shape, int& client);

    // Nothing for the admin token. 401 without a token, 403 with another one (or when no admin token
    // is configured: then nobody is an admin); logged.
    std::optional<Response> refuse_admin(const Request& request, const ErrorShape& shape);
    // The same for a token the caller found elsewhere than the Authorization header ("" for none).
    std::optional<Response> refuse_admin(const Request& request, std::string_view token, const ErrorShape& shape);

    bool open() const { return clients_.empty(); }

private:
    void log_refusal(const Request& request, std::string_view what);

    KeySet clients_;
    KeySet admins_;
    LogLimit log_limit_;
};

}  // namespace agente::app
