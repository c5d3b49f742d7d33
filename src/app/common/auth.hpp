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
    bool contains(std::string_view candidate) const { return find(candidate) >= 0; }
    // The index of the matching key in the constructor's list, -1 for none; in the same constant
    // time (when a key is listed twice: the last).
    int find(std::string_view candidate) const;

private:
    std::vector<SecretDigest> digests_;
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
