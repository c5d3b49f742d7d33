// The one admission sequence of every route that calls a provider or the RAG stores for a client
// key: the gateway's /v1, the agent's /tasks/send and /agent/stream, the files and vector stores.
// A streamed answer first takes a place in the server's stream limit (this machine's shared memory),
// then a lease in the cluster's limit (Redis, when [cluster] shares it), and only then the key's own
// limits (client_limits.hpp: rpm, tpm, max_streams); a request refused by the server's limits spends
// nothing of the key's allowance. A whole answer takes the key's limits alone. What was taken is held
// by the Pass until the request ends, however it ends, so no route can forget to give a place back.
//
// A refusal is data (status, message, OpenAI's type and code, headers); each route family writes it
// in its own body shape (OpenAI's error object, a JSON-RPC error, the seed's plain error) with the
// same Retry-After and x-ratelimit-* headers.
#pragma once

#include "app/cluster/redis_link.hpp"
#include "app/gateway/errors.hpp"
#include "app/gateway/gateway.hpp"

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace agente::gateway {

struct Refusal {
    int status = 429;
    std::string message;
    std::string type;      // OpenAI's error type: "requests", "tokens", "streams" (the key's), "rate_limit_error"
    std::string code;      // "rate_limit_exceeded", "too_many_streams"
    std::string limit;     // which limit: "requests", "tokens", "streams" (the key's), "server_streams"
    std::vector<Header> headers;   // Retry-After, and x-ratelimit-* when the key has limits
    int retry_after = 1;   // seconds, as in Retry-After
};

class Pass {
public:
    // `client`: the key's index in settings.clients (-1 when the endpoints are open).
    Pass(Gateway& gateway, int client) : gw_(&gateway), client_(client) {}
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;

    // Takes the limits in order; nothing when the request may go on (what was taken is then held
    // until the Pass ends), else the refusal (nothing held). `stream`: the answer is streamed.
    asio::awaitable<std::optional<Refusal>> take(bool stream);

    // take() for a route: a refusal is answered on `ex`, written by `refusal_answer` (the family's
    // body shape), and false returned; an admitted request's answer gets OpenAI's x-ratelimit-*
    // headers for the limits its key has.
    asio::awaitable<bool> admit(Exchange& ex, bool stream, const std::function<Response(const Refusal&)>& refusal_answer);

    // Those headers (admitted).
    std::vector<Header> rate_headers() const;
    // The tokens the upstream reported, once the request ended: the key's usage and its tpm.
    void charge(const TokenUsage& used);
    // The same from an upstream's "usage" object as it came (null: it reported none).
    void charge(const nlohmann::json& usage);

private:
    // A stream across machines waits for the cluster's lease; everything else is taken at once.
    bool awaits_lease(bool stream) const;
    std::optional<Refusal> take_place(bool stream);   // this server's stream places
    std::optional<Refusal> take_key(bool stream);     // the client key's limits
    std::optional<Refusal> take_here(bool stream);    // both, when no lease is awaited

    Gateway* gw_;
    int client_;
    Admission admission_;
    // Destroyed in reverse: the key's slot, the cluster's lease, then the server's place.
    std::optional<StreamPermit> permit_;
    std::optional<cluster::StreamLease> lease_;
    std::optional<ClientStreamSlot> slot_;
};

// The refusal in OpenAI's error object (/v1, the files and vector stores), with its headers.
Response openai_refusal(const Refusal& refusal);
// The refusal in another family's body (`shape` makes it from the status and message), with its
// headers.
Response shaped_refusal(const Refusal& refusal, const ErrorShape& shape);

}  // namespace agente::gateway
