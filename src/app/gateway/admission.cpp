// The admission sequence (admission.hpp). The key's decision is key_limits.cpp's and its cells are
// client_limits.cpp's; here, the order, what is held, and the refusals as data.
#include "app/gateway/admission.hpp"

#include <nlohmann/json.hpp>

namespace agente::gateway {

namespace {

// A stream place frees as soon as any stream ends: the client may try again at once.
constexpr int streams_retry_after_s = 1;

Refusal streams_refusal(int max_streams) {
    Refusal r;
    r.message = "too many concurrent streams (max " + std::to_string(max_streams) + ")";
    r.type = "rate_limit_error";
    r.code = "too_many_streams";
    r.limit = "server_streams";
    r.retry_after = streams_retry_after_s;
    r.headers.push_back({"Retry-After", std::to_string(r.retry_after)});
    return r;
}

std::string per_minute_text(Limit l) {
    if (l == Limit::tokens) return "tokens per min (TPM)";
    return "requests per min (RPM)";
}

// OpenAI's own 429 names the limit in "type" ("requests", "tokens").
Refusal key_refusal(const Admission& a, const ClientKey& client) {
    Refusal r;
    r.type = limit_name(a.refused);
    r.limit = r.type;
    r.code = "rate_limit_exceeded";
    if (a.refused == Limit::streams) {
        r.message = "too many concurrent streams for client key \"" + client.name + "\" (max " +
                    std::to_string(client.limits.max_streams) + ")";
        r.code = "too_many_streams";
    } else {
        const RateFigures& f = a.refused == Limit::tokens ? a.tokens : a.requests;
        r.message = "Rate limit reached for client key \"" + client.name + "\" on " + per_minute_text(a.refused) +
                    ": Limit " + std::to_string(f.limit) + ". Please try again in " +
                    std::to_string(a.retry_after.count()) + "s.";
    }
    r.retry_after = int(a.retry_after.count());
    r.headers = gateway::rate_headers(a);
    r.headers.push_back({"Retry-After", std::to_string(r.retry_after)});
    return r;
}

Response with_headers(Response r, const Refusal& refusal) {
    for (const Header& h : refusal.headers) r.headers.push_back(h);
    return r;
}

}  // namespace

bool Pass::awaits_lease(bool stream) const { return stream && gw_->cluster && gw_->cluster->shares_streams(); }

std::optional<Refusal> Pass::take_place(bool stream) {
    if (!stream) return std::nullopt;
    if (!gw_->limiter.try_acquire()) return streams_refusal(gw_->limiter.max());
    permit_.emplace(&gw_->limiter);
    return std::nullopt;
}

std::optional<Refusal> Pass::take_key(bool stream) {
    admission_ = gw_->clients.admit(client_, stream);
    if (admission_.refused != Limit::none) {
        lease_.reset();
        permit_.reset();
        return key_refusal(admission_, gw_->settings.clients[std::size_t(client_)]);
    }
    if (stream) slot_.emplace(gw_->clients, client_, true);
    return std::nullopt;
}

std::optional<Refusal> Pass::take_here(bool stream) {
    if (auto refused = take_place(stream)) return refused;
    return take_key(stream);
}

asio::awaitable<std::optional<Refusal>> Pass::take(bool stream) {
    if (!awaits_lease(stream)) co_return take_here(stream);
    if (auto refused = take_place(stream)) co_return refused;
    std::shared_ptr<cluster::ClusterLink> link = gw_->cluster;   // lives while the lease is awaited
    cluster::StreamLease granted = co_await link->acquire_stream();
    if (!granted) {
        permit_.reset();
        co_return streams_refusal(link->streams_limit());
    }
    lease_.emplace(std::move(granted));
    co_return take_key(stream);
}

asio::awaitable<bool> Pass::admit(Exchange& ex, bool stream, const std::function<Response(const Refusal&)>& refusal_answer) {
    std::optional<Refusal> refused;
    if (awaits_lease(stream)) refused = co_await take(stream);
    else refused = take_here(stream);   // no coroutine of take()'s own where nothing is awaited
    if (refused) {
        Response answer = refusal_answer(*refused);
        co_await ex.respond(std::move(answer));
        co_return false;
    }
    for (Header& h : rate_headers()) ex.add_header(std::move(h.name), std::move(h.value));
    co_return true;
}

std::vector<Header> Pass::rate_headers() const { return gateway::rate_headers(admission_); }

void Pass::charge(const TokenUsage& used) { gw_->clients.charge(client_, used); }

void Pass::charge(const nlohmann::json& usage) {
    if (std::optional<TokenUsage> used = usage_in_object(usage)) charge(*used);
}

Response openai_refusal(const Refusal& refusal) {
    return with_headers(Response::json(refusal.status, error_json(refusal.message, refusal.type, refusal.code)), refusal);
}

Response shaped_refusal(const Refusal& refusal, const ErrorShape& shape) {
    return with_headers(shape(refusal.status, refusal.message), refusal);
}

}  // namespace agente::gateway
