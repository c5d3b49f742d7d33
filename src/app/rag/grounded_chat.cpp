#include "app/rag/grounded_chat.hpp"

#include "app/gateway/completion.hpp"
#include "app/gateway/errors.hpp"
#include "app/gateway/sse.hpp"
#include "app/json_text.hpp"
#include "app/rag/grounded_prompt.hpp"
#include "app/rag/openai_json.hpp"
#include "app/rag/routes.hpp"
#include "app/rag/store.hpp"
#include "app/rag/wire.hpp"

#include <chrono>

namespace agente::rag {

namespace {

using nlohmann::json;


struct Grounding {
    gateway::Gateway* gw = nullptr;
    DirtyClient* dirty = nullptr;
    bool configured = false;
};

using gateway::GroundedResult;

long now_seconds() {
    return long(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::string search_payload(const std::string& store, const std::string& question, int max) {
    json head = {{"op", "search"}, {"body", {{"query", question}, {"max_num_results", max}}}};
    // Ids are OpenAI's (vs_...); anything else is a name, as the rag CLI's --store takes.
    if (store.starts_with("vs_")) head["store_id"] = store;
    else head["store_name"] = store;
    return wire::pack(head);
}

GroundedResult refused(int status, std::string message) {
    GroundedResult r;
    r.completion.status = status;
    r.completion.error = std::move(message);
    return r;
}

// A search's failure (OpenAI's error object from the RAG job or the pool) as a GroundedResult.
GroundedResult search_failure(const Response& r) {
    json body = parse_json(r.body);
    std::string message = "vector store search answered " + std::to_string(r.status);
    if (body.is_object() && body.contains("error") && body["error"].is_object())
        message = body["error"].value("message", message);
    GroundedResult out = refused(r.status, std::move(message));
    for (const Header& h : r.headers) out.retry_soon = out.retry_soon || h.name == "Retry-After";
    return out;
}

// What a grounded answer that made no upstream call used.
json no_usage() { return {{"prompt_tokens", 0}, {"completion_tokens", 0}, {"total_tokens", 0}}; }

// The sources of every store for `question`; a failure to answer instead when a search failed
// (status 499 when the caller left meanwhile: nobody to answer).
asio::awaitable<std::optional<GroundedResult>> retrieve(const Grounding& g, const app::Retrieval& retrieval,
                                                        const std::string& question, std::vector<Source>& sources) {
    std::vector<json> pages;
    for (const std::string& store : retrieval.vector_stores) {
        std::string payload = search_payload(store, question, retrieval.max_sources);
        std::string_view kind = wire::search_kind;
        DirtyResult result = co_await g.dirty->call(kind, std::move(payload), wire::search_deadline);
        if (result.error == DirtyErrc::cancelled) co_return refused(499, "the caller left");
        Response r = response_of(result);
        if (r.status != 200) co_return search_failure(r);
        pages.push_back(parse_json(r.body));
    }
    sources = sources_from(retrieval.vector_stores, pages, retrieval.max_sources);
    co_return std::nullopt;
}

// The one grounded path (gateway::GroundedCompletion): the search query from the conversation, the
// sources, the upstream call through the gateway's attempts, the citations. Used by the chat route
// below and by the agent (through Gateway::grounded_complete).
asio::awaitable<GroundedResult> answer_grounded(const Grounding& g, const gateway::ModelSettings& model,
                                                const app::Retrieval& retrieval, json body,
                                                const gateway::DeltaCallback* on_delta) {
    if (!g.configured) co_return refused(404, "model " + model.name + " answers from vector stores: add a [rag] table to server.conf");
    if (!g.dirty)
        co_return refused(503, "model " + model.name + " answers from vector stores, which run in the dirty pool: set "
                               "dirty_workers = 1 or more");
    json messages = body.value("messages", json());
    std::string question = retrieval_query(messages, retrieval.retrieval_turns, max_query_chars);
    if (question.empty())
        co_return refused(400, "messages: a user message with text is required to search the vector stores");
    std::vector<Source> sources;
    std::optional<GroundedResult> failed = co_await retrieve(g, retrieval, question, sources);
    if (failed) co_return std::move(*failed);
    GroundedResult out;
    if (sources.empty()) {   // nothing invented: no upstream call, nothing to cite
        out.retrieved_nothing = true;
        out.completion.ok = true;
        out.completion.content = nothing_found_text();
        out.completion.usage = no_usage();
        if (!on_delta) co_return out;
        bool reader_there = co_await (*on_delta)(out.completion.content);
        if (!reader_there) out = refused(499, "reader gone");
        co_return out;
    }
    json upstream = with_sources(std::move(body), sources);
    if (on_delta) out.completion = co_await gateway::complete_stream(*g.gw, model, std::move(upstream), *on_delta);
    else out.completion = co_await gateway::complete(*g.gw, model, std::move(upstream));
    if (out.completion.ok) out.citations = citations(out.completion.content, sources);
    co_return out;
}

json completion_object(const std::string& id, const std::string& model, const GroundedResult& r) {
    json j = {{"id", id},
              {"object", "chat.completion"},
              {"created", now_seconds()},
              {"model", model},
              {"choices", json::array({{{"index", 0},
                                        {"message", {{"role", "assistant"}, {"content", r.completion.content}}},
                                        {"finish_reason", "stop"}}})},
              {"citations", r.citations}};
    if (!r.completion.usage.is_null()) j["usage"] = r.completion.usage;
    return j;
}

// One chat.completion.chunk event: a delta, or (delta empty, `last`) the end with the citations.
std::string chunk_event(const std::string& id, const std::string& model, std::string_view delta, bool first,
                        const json* last_citations) {
    json d = json::object();
    if (first) d["role"] = "assistant";
    if (!delta.empty()) d["content"] = std::string(delta);
    json choice = {{"index", 0}, {"delta", d}, {"finish_reason", nullptr}};
    json chunk = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", now_seconds()}, {"model", model}};
    if (last_citations) {
        choice["finish_reason"] = "stop";
        chunk["citations"] = *last_citations;
    }
    chunk["choices"] = json::array({choice});
    return gateway::data_event(json_text(chunk));
}

// The end of a stream: the citations, OpenAI's usage chunk (no choices) when the client asked for
// stream_options.include_usage and there is a usage to give, then [DONE].
std::string stream_end(const std::string& id, const std::string& model, const GroundedResult& r, bool first,
                       bool include_usage) {
    std::string out = chunk_event(id, model, "", first, &r.citations);
    if (include_usage && !r.completion.usage.is_null()) {
        json usage = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", now_seconds()}, {"model", model},
                      {"choices", json::array()}, {"usage", r.completion.usage}};
        out += gateway::data_event(json_text(usage));
    }
    return out + gateway::data_event("[DONE]");
}

bool wants_usage(const json& body) {
    auto options = body.find("stream_options");
    return options != body.end() && options->is_object() && options->value("include_usage", false);
}

Response failure_response(const GroundedResult& r) {
    Response failed = gateway::error_response(r.completion.status, r.completion.error);
    if (r.retry_soon) failed.headers.push_back({"Retry-After", "1"});   // a dirty worker is respawned at once
    return failed;
}

// The tokens the upstream reported for a grounded answer, for the client key's usage and limits.
gateway::TokenUsage used_by(const GroundedResult& r) {
    return gateway::usage_in_object(r.completion.usage).value_or(gateway::TokenUsage{});
}

asio::awaitable<gateway::TokenUsage> answer_whole(const Grounding& g, Exchange& ex, const gateway::ModelSettings& model,
                                                  json body) {
    GroundedResult r = co_await answer_grounded(g, model, model.retrieval, std::move(body), nullptr);
    if (r.completion.status == 499) co_return used_by(r);
    if (!r.completion.ok) {
        Response failed = failure_response(r);
        co_await ex.respond(std::move(failed));
        co_return used_by(r);
    }
    std::string id = new_id("chatcmpl-");
    Response answer = Response::json(200, json_text(completion_object(id, model.name, r)));
    co_await ex.respond(std::move(answer));
    co_return used_by(r);
}

// g++ 12 warns -Wmismatched-new-delete on this coroutine's frame (asio's recycling allocator seen
// through inlining); a false positive, silenced as for the agent's NDJSON stream.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
// The stream starts with the first delta: a search or an upstream that fails before it is answered
// as a plain HTTP error, which a client reads more easily than an error event. Its places in the
// stream limits and its stop event are the route's (gateway/routes.cpp), set before it is called.
asio::awaitable<gateway::TokenUsage> answer_stream(const Grounding& g, Exchange& ex, const gateway::ModelSettings& model,
                                                   json body) {
    std::string id = new_id("chatcmpl-");
    bool include_usage = wants_usage(body);
    bool started = false, first = true;
    gateway::DeltaCallback on_delta = [&](std::string_view delta) -> asio::awaitable<bool> {
        if (!started) {
            std::vector<Header> headers;   // the core's stream fields are all it needs
            if (co_await ex.start_stream(200, "text/event-stream", std::move(headers))) co_return false;
            started = true;
        }
        std::string event = chunk_event(id, model.name, delta, first, nullptr);
        first = false;
        co_return !co_await ex.write(event);
    };
    GroundedResult r = co_await answer_grounded(g, model, model.retrieval, std::move(body), &on_delta);
    if (r.completion.status == 499) co_return used_by(r);
    if (!started && !r.completion.ok) {
        Response failed = failure_response(r);
        co_await ex.respond(std::move(failed));
        co_return used_by(r);
    }
    if (!started) {   // an upstream that answered nothing: the stream is only its end
        std::vector<Header> headers;   // the core's stream fields are all it needs
        if (co_await ex.start_stream(200, "text/event-stream", std::move(headers))) co_return used_by(r);
    }
    if (!r.completion.ok) {
        std::string failed = gateway::error_event(r.completion.error, "upstream_error");
        co_await ex.finish(failed);
        co_return used_by(r);
    }
    std::string last = stream_end(id, model.name, r, first, include_usage);
    co_await ex.finish(last);
    co_return used_by(r);
}
#pragma GCC diagnostic pop

asio::awaitable<gateway::TokenUsage> grounded(const Grounding& g, Exchange& ex, const gateway::ModelSettings& model) {
    json body = parse_json(ex.request().body());   // checked as an object with a model by the gateway
    bool stream = body.value("stream", false);
    body.erase("model");   // complete() names the target's model
    if (stream) co_return co_await answer_stream(g, ex, model, std::move(body));
    co_return co_await answer_whole(g, ex, model, std::move(body));
}

}  // namespace

void install_grounded_chat(gateway::Gateway& gw, DirtyClient* dirty, bool configured) {
    auto g = std::make_shared<Grounding>(Grounding{&gw, dirty, configured});
    gw.grounded_chat = [g](Exchange& ex, const gateway::ModelSettings& model) { return grounded(*g, ex, model); };
    gw.grounded_complete = [g](const gateway::ModelSettings& model, const app::Retrieval& retrieval, json body,
                               const gateway::DeltaCallback* on_delta) {
        return answer_grounded(*g, model, retrieval, std::move(body), on_delta);
    };
}

}  // namespace agente::rag
