// The attempt loop of proxy.cpp, ending in text instead of a relay. A failed attempt counts against
// its provider's breaker; once a delta was delivered there is no retry and no fallback.
#include "app/gateway/completion.hpp"

#include "app/gateway/sse.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace agente::gateway {

namespace {

using nlohmann::json;

// The attempt's outcome: done (ok or a final failure), or try again / fall back.
enum class Next { done, retry, fallback };

asio::awaitable<void> backoff(milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

std::vector<Header> request_headers(const ProviderSettings& p, bool stream) {
    std::vector<Header> h{{"Content-Type", "application/json"},
                          {"Accept", stream ? "text/event-stream" : "application/json"}};
    if (!p.api_key.empty()) h.push_back({"Authorization", "Bearer " + p.api_key});
    return h;
}

int status_of(CallError e) { return e == CallError::timeout ? 504 : 502; }

std::string upstream_message(const std::string& body, int status) {
    json j = json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
        j["error"]["message"].is_string())
        return j["error"]["message"].get<std::string>();
    return "upstream answered " + std::to_string(status);
}

std::string message_content(const std::string& body, bool& ok) {
    json j = json::parse(body, nullptr, false);
    ok = false;
    if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return {};
    const json& c = j["choices"][0];
    if (!c.contains("message") || !c["message"].is_object()) return {};
    ok = true;
    const json& m = c["message"];
    return m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : std::string();
}

struct Attempt {
    Gateway& gw;
    const ModelSettings& model;
    const ProviderSettings& p;
    const std::string& body;
    bool stream;
    const DeltaCallback* on_delta;
    CompletionResult& result;

    void fail(Breaker& b, int status, std::string why) {
        b.record_failure();
        result.ok = false;
        result.status = status;
        result.error = p.name + ": " + why;
        spdlog::warn("agent completion: model {} via {}: {}", model.name, p.name, why);
    }

    asio::awaitable<Next> run() {
        Breaker& breaker = gw.breaker_of(p);
        CallTimeouts t{p.connect_timeout, p.first_byte_timeout, stream ? gw.settings.stream_timeout : p.total_timeout};
        UpstreamCall call(*gw.pool, p.endpoint, t);
        CallError e = co_await call.send("POST", "/chat/completions", request_headers(p, stream), body);
        if (e != CallError::none) {
            fail(breaker, status_of(e), std::string(call_error_name(e)));
            co_return e == CallError::connect ? Next::retry : Next::fallback;
        }
        int status = call.status();
        if (status == 429 || status >= 500) {
            fail(breaker, status == 429 ? 429 : 502, "upstream status " + std::to_string(status));
            co_return Next::retry;
        }
        if (status >= 300 || !stream) {
            std::string text;
            e = co_await call.read_all(text);
            if (e != CallError::none) {
                fail(breaker, status_of(e), std::string(call_error_name(e)));
                co_return Next::fallback;
            }
            breaker.record_success();   // the provider works, even when the request was refused
            if (status >= 300) {
                result = {false, status, {}, upstream_message(text, status), false};
                co_return Next::done;
            }
            bool ok = false;
            result.content = message_content(text, ok);
            result.ok = ok;
            if (!ok) {
                result.status = 502;
                result.error = "upstream answer without choices[0].message";
            }
            co_return Next::done;
        }
        co_return co_await relay(call, breaker);
    }

    asio::awaitable<Next> relay(UpstreamCall& call, Breaker& breaker) {
        SseSplitter sse;
        std::string piece;
        bool silence = false;
        while (co_await call.read_some(piece, gw.settings.stream_keepalive, silence)) {
            if (silence) continue;
            for (auto& event : sse.feed(piece)) {
                if (is_done_event(event)) continue;
                std::string delta = delta_content(event_data(event));
                if (delta.empty()) continue;
                result.content += delta;
                result.started = true;
                if (!co_await (*on_delta)(delta)) {
                    // The reader left: nobody wants the rest; closing the call cancels the upstream.
                    result.ok = false;
                    result.status = 499;
                    result.error = "reader gone";
                    co_return Next::done;
                }
            }
        }
        if (call.error() != CallError::none) {
            fail(breaker, status_of(call.error()),
                 call.error() == CallError::timeout ? "upstream stream timed out" : "upstream connection lost mid-stream");
            co_return result.started ? Next::done : Next::fallback;
        }
        breaker.record_success();
        result.ok = true;
        result.status = 200;
        co_return Next::done;
    }
};

asio::awaitable<CompletionResult> run_targets(Gateway& gw, const ModelSettings& model, json& body, bool stream,
                                              const DeltaCallback* on_delta) {
    CompletionResult result;
    result.status = 503;
    result.error = "circuit breaker open for every provider of model " + model.name;
    if (stream) body["stream"] = true;
    else body.erase("stream");
    for (const Target& target : model.targets) {
        const ProviderSettings* p = gw.settings.provider(target.provider);
        if (!p) continue;
        body["model"] = target.model;
        std::string text = body.dump();
        for (int n = 0; n <= gw.settings.retries; ++n) {
            if (!gw.breaker_of(*p).allow()) break;   // open: straight to the fallback
            if (n > 0) co_await backoff(gw.settings.retry_backoff * (1 << (n - 1)));
            Attempt a{gw, model, *p, text, stream, on_delta, result};
            Next next = co_await a.run();
            if (next == Next::done) co_return result;
            if (next == Next::fallback) break;
        }
    }
    co_return result;
}

}  // namespace

std::string delta_content(std::string_view data) {
    json j = json::parse(data, nullptr, false);
    if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return {};
    const json& c = j["choices"][0];
    if (!c.is_object() || !c.contains("delta") || !c["delta"].is_object()) return {};
    const json& d = c["delta"];
    return d.contains("content") && d["content"].is_string() ? d["content"].get<std::string>() : std::string();
}

bool all_breakers_open(Gateway& gw, const ModelSettings& model) {
    for (const Target& t : model.targets)
        if (const ProviderSettings* p = gw.settings.provider(t.provider); p && gw.breaker_of(*p).state() != BreakerState::open)
            return false;
    return true;
}

asio::awaitable<CompletionResult> complete(Gateway& gw, const ModelSettings& model, json body) {
    co_return co_await run_targets(gw, model, body, false, nullptr);
}

asio::awaitable<CompletionResult> complete_stream(Gateway& gw, const ModelSettings& model, json body,
                                                  DeltaCallback on_delta) {
    co_return co_await run_targets(gw, model, body, true, &on_delta);
}

}  // namespace agente::gateway
