// The agent's side of an upstream answer: text, whole or delta by delta. Which targets are tried,
// how often and what the breakers count is attempts.cpp's, as for the HTTP proxy.
#include "app/gateway/completion.hpp"

#include "app/gateway/attempts.hpp"
#include "app/gateway/sse.hpp"
#include "app/json_text.hpp"

namespace agente::gateway {

namespace {

using nlohmann::json;

std::string upstream_message(const std::string& body, int status) {
    json j = parse_json(body);
    if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
        j["error"]["message"].is_string())
        return j["error"]["message"].get<std::string>();
    return "upstream answered " + std::to_string(status);
}

std::string message_content(const std::string& body, bool& ok, json& usage) {
    json j = parse_json(body);
    ok = false;
    if (j.is_object() && j.contains("usage") && j["usage"].is_object()) usage = j["usage"];
    if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return {};
    const json& c = j["choices"][0];
    if (!c.contains("message") || !c["message"].is_object()) return {};
    ok = true;
    const json& m = c["message"];
    return m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : std::string();
}

// Conditional expressions stay out of coroutine bodies: g++ 12 mishandles them there.
std::string with_provider(const Failure& f, std::string why) {
    return f.provider.empty() ? why : f.provider + ": " + why;
}

class TextReceiver final : public Receiver {
public:
    explicit TextReceiver(const DeltaCallback* on_delta) : on_delta_(on_delta) {}

    // A stream's reader gets a whole answer (an upstream that cannot stream) as one delta.
    asio::awaitable<error_code> whole(int status, std::string& body, std::string&) override {
        if (status >= 300) fail(status, upstream_message(body, status));   // the request itself was refused
        else take_message(body);
        if (!on_delta_ || !result.ok || result.content.empty()) co_return error_code{};
        result.started = true;
        bool reader_there = co_await (*on_delta_)(result.content);
        if (reader_there) co_return error_code{};
        fail(499, "reader gone");
        co_return asio::error::connection_aborted;
    }

    asio::awaitable<error_code> events(std::span<const std::string_view> texts, bool) override {
        for (std::string_view text : texts) {
            std::string_view data = event_data(text, joined_);
            if (data == "[DONE]") continue;
            take_usage(data);
            std::string delta = delta_content(data);
            if (delta.empty()) continue;
            result.content += delta;
            result.started = true;
            bool reader_there = co_await (*on_delta_)(delta);
            if (reader_there) continue;
            // The reader left: nobody wants the rest; closing the call cancels the upstream.
            fail(499, "reader gone");
            co_return asio::error::connection_aborted;
        }
        co_return error_code{};
    }

    asio::awaitable<bool> silence() override { co_return true; }

    asio::awaitable<void> end_stream() override {
        result.ok = true;
        result.status = 200;
        co_return;
    }

    asio::awaitable<void> stream_broken(const Failure& f) override {
        fail(failure_status(f), with_provider(f, broken_stream_message(f)));
        co_return;
    }

    asio::awaitable<void> failed(const Failure& f) override {
        fail(failure_status(f), with_provider(f, failure_message(f)));
        co_return;
    }

    bool started() const override { return result.started; }

    CompletionResult result;

private:
    std::string joined_;   // an event's data lines joined, when it has several (event_data())

    void fail(int status, std::string why) {
        result.ok = false;
        result.status = status;
        result.error = std::move(why);
    }

    // OpenAI sends the usage on a last chunk of its own (no choices); some providers put it on the
    // last content chunk. Only chunks that mention it are parsed twice.
    void take_usage(std::string_view data) {
        if (data.find("\"usage\"") == std::string_view::npos) return;
        json j = parse_json(data);
        if (j.is_object() && j.contains("usage") && j["usage"].is_object()) result.usage = j["usage"];
    }

    void take_message(const std::string& body) {
        bool ok = false;
        result.content = message_content(body, ok, result.usage);
        if (!ok) return fail(502, "upstream answer without choices[0].message");
        result.ok = true;
        result.status = 200;
    }

    const DeltaCallback* on_delta_;
};

asio::awaitable<CompletionResult> run(Gateway& gw, const ModelSettings& model, json& body, bool stream,
                                      const DeltaCallback* on_delta) {
    body["model"] = model.name;
    if (stream) body["stream"] = true;
    else body.erase("stream");
    std::string problem;
    std::optional<RequestBody> text = RequestBody::parse(json_text(body), problem);
    if (!text) {  // built here from the agent's settings: only nesting past the bound can do this
        CompletionResult refused;
        refused.status = 400;
        refused.error = problem;
        co_return refused;
    }
    TextReceiver rx(on_delta);
    UpstreamRequest req;
    req.model = &model;
    req.path = "/chat/completions";
    req.body = &*text;
    co_await try_targets(gw, std::move(req), rx);
    co_return std::move(rx.result);
}

}  // namespace

std::string delta_content(std::string_view data) {
    json j = parse_json(data);
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
    co_return co_await run(gw, model, body, false, nullptr);
}

asio::awaitable<CompletionResult> complete_stream(Gateway& gw, const ModelSettings& model, json body,
                                                  DeltaCallback on_delta) {
    co_return co_await run(gw, model, body, true, &on_delta);
}

}  // namespace agente::gateway
