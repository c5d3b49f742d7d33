#include "app/rag/routes.hpp"

#include "app/common/multipart.hpp"
#include "app/common/query.hpp"
#include "app/gateway/admission.hpp"
#include "app/gateway/errors.hpp"
#include "app/json_text.hpp"
#include "app/rag/grounded_chat.hpp"
#include "app/rag/settings.hpp"
#include "app/rag/wire.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

namespace agente::rag {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// How long a call may wait for its dirty worker, queue included (the core caps it at dirty_timeout):
// reads are a few SQLite queries; an upload writes the whole file (searches: wire::search_deadline).
constexpr std::chrono::milliseconds read_deadline = 30s;
constexpr std::chrono::milliseconds write_deadline = 120s;
// A JSON request body (a store, an attachment, a search) is small; larger is refused with 413.
constexpr std::size_t max_json_body = 1 << 20;
// What OpenAI's clients wait between polls of an ingest (`openai-poll-after-ms`; without it they
// wait 5 s): a small file is ingested in well under a second.
constexpr const char* poll_after_ms = "250";
// The dirty pool's frames carry at most 64 MiB (docs/dirty.md); an upload travels in one, beside
// its few hundred bytes of head.
constexpr std::size_t max_upload_frame = (64u << 20) - (64u << 10);

struct Endpoint {
    const char* method;
    const char* pattern;
    const char* kind;
    const char* op;
    std::chrono::milliseconds deadline;
    bool polled = false;   // what the clients' createAndPoll / uploadAndPoll read until it is done
};

const Endpoint endpoints[] = {
    {"POST", "/v1/files", wire::files_kind, "files.create", write_deadline},
    {"GET", "/v1/files", wire::read_kind, "files.list", read_deadline},
    {"GET", "/v1/files/{file_id}", wire::read_kind, "files.get", read_deadline},
    {"DELETE", "/v1/files/{file_id}", wire::files_kind, "files.delete", write_deadline},
    {"GET", "/v1/files/{file_id}/content", wire::read_kind, "files.content", read_deadline},
    {"POST", "/v1/vector_stores", wire::stores_kind, "stores.create", write_deadline},
    {"GET", "/v1/vector_stores", wire::read_kind, "stores.list", read_deadline},
    {"GET", "/v1/vector_stores/{store_id}", wire::read_kind, "stores.get", read_deadline},
    {"POST", "/v1/vector_stores/{store_id}", wire::stores_kind, "stores.update", write_deadline},
    {"DELETE", "/v1/vector_stores/{store_id}", wire::stores_kind, "stores.delete", write_deadline},
    {"POST", "/v1/vector_stores/{store_id}/files", wire::store_files_kind, "store_files.create", write_deadline},
    {"GET", "/v1/vector_stores/{store_id}/files", wire::read_kind, "store_files.list", read_deadline},
    {"GET", "/v1/vector_stores/{store_id}/files/{file_id}", wire::read_kind, "store_files.get", read_deadline, true},
    {"POST", "/v1/vector_stores/{store_id}/files/{file_id}", wire::store_files_kind, "store_files.update", write_deadline},
    {"DELETE", "/v1/vector_stores/{store_id}/files/{file_id}", wire::store_files_kind, "store_files.delete",
     write_deadline},
    {"POST", "/v1/vector_stores/{store_id}/file_batches", wire::batches_kind, "batches.create", write_deadline},
    {"GET", "/v1/vector_stores/{store_id}/file_batches/{batch_id}", wire::read_kind, "batches.get", read_deadline, true},
    {"POST", "/v1/vector_stores/{store_id}/file_batches/{batch_id}/cancel", wire::batches_kind, "batches.cancel",
     write_deadline},
    {"GET", "/v1/vector_stores/{store_id}/file_batches/{batch_id}/files", wire::read_kind, "store_files.list",
     read_deadline},
    {"POST", "/v1/vector_stores/{store_id}/search", wire::search_kind, "search", wire::search_deadline},
};

// The {name}s of a pattern, in order.
std::vector<std::string> param_names(std::string_view pattern) {
    std::vector<std::string> names;
    for (std::size_t open = pattern.find('{'); open != std::string_view::npos; open = pattern.find('{', open + 1))
        names.emplace_back(pattern.substr(open + 1, pattern.find('}', open) - open - 1));
    return names;
}

Response openai_error(int status, std::string_view message) { return gateway::error_response(status, message); }

struct Shared {
    std::shared_ptr<gateway::Gateway> gw;
    DirtyClient* dirty = nullptr;
    bool configured = false;
    std::size_t max_upload = 0;
};

// The upload's fields into `head` and its bytes into `data`; a refusal otherwise.
std::optional<Response> read_upload(const Shared& s, const Request& r, json& head, std::string_view& data) {
    std::optional<std::string> boundary = app::form_boundary(r.header("Content-Type"));
    if (!boundary) return openai_error(400, "expected a multipart/form-data body with a boundary");
    if (r.body().size() > s.max_upload)
        return gateway::error_response(413, "upload larger than " + std::to_string(s.max_upload) + " bytes",
                                       "file_too_large");
    std::string problem;
    auto parts = app::parse_form(r.body(), *boundary, problem);
    if (!parts) return openai_error(400, "multipart body: " + problem);
    const app::FormPart* file = app::form_field(*parts, "file");
    const app::FormPart* purpose = app::form_field(*parts, "purpose");
    if (!file || !file->has_filename) return openai_error(400, "file: a file part is required");
    if (!purpose || purpose->data.empty()) return openai_error(400, "purpose: required");
    head["filename"] = file->filename;
    head["purpose"] = std::string(purpose->data);
    head["content_type"] = file->content_type;
    data = file->data;
    return std::nullopt;
}

// The job's request for `e` from the path, the query and the body; a refusal otherwise.
std::optional<Response> build_request(const Shared& s, const Endpoint& e, const std::vector<std::string>& names,
                                      const Request& r, std::string& payload) {
    json head = {{"op", e.op}};
    for (std::size_t i = 0; i < names.size(); ++i) head[names[i]] = std::string(r.path_param(i));
    auto query = app::parse_query(r.query());
    if (!query) return openai_error(400, "malformed query string");
    for (auto& p : *query) {
        if (p.name.empty() || head.contains(p.name)) continue;   // a path parameter is not overridden
        head[p.name] = std::move(p.value);
    }
    std::string_view data;
    if (std::string_view(e.op) == "files.create") {
        if (auto refusal = read_upload(s, r, head, data)) return refusal;
    } else if (std::string_view(e.method) == "POST" && !r.body().empty()) {
        if (r.body().size() > max_json_body)
            return openai_error(413, "request body larger than " + std::to_string(max_json_body) + " bytes");
        json body = parse_json(r.body());
        if (body.is_discarded() || !body.is_object()) return openai_error(400, "expected a JSON object");
        head["body"] = std::move(body);
    }
    payload = wire::pack(head, data);
    return std::nullopt;
}

}  // namespace

Response response_of(const DirtyResult& result) {
    switch (result.error) {
    case DirtyErrc::none: break;
    case DirtyErrc::timeout: return gateway::error_response(504, "the RAG job did not finish in time", "timeout");
    case DirtyErrc::unavailable: {
        Response r = gateway::error_response(503, "the RAG workers are busy or restarting; retry", "unavailable");
        r.headers.push_back({"Retry-After", "1"});   // a dirty worker is respawned at once
        return r;
    }
    case DirtyErrc::worker_died:
        return gateway::error_response(502, "the RAG worker ended during the request; retry", "worker_died");
    case DirtyErrc::job_failed:
    case DirtyErrc::cancelled: return gateway::error_response(500, "the RAG job failed: " + result.message, "server_error");
    }
    wire::Unpacked reply = wire::unpack(result.value);
    if (!reply.head.is_object()) return gateway::error_response(500, "the RAG job answered garbage", "server_error");
    int status = reply.head.value("status", 500);
    if (reply.head.contains("error"))
        return gateway::error_response(status, reply.head.value("error", ""), reply.head.value("code", ""));
    if (reply.head.contains("content_type")) {
        Response r;
        r.status = status;
        r.content_type = reply.head.value("content_type", "application/octet-stream");
        r.body = std::string(reply.tail);
        return r;
    }
    return Response::json(status, json_text(reply.head["body"]));
}

namespace {

asio::awaitable<void> serve(std::shared_ptr<Shared> s, const Endpoint* e, std::shared_ptr<std::vector<std::string>> names,
                            Exchange& ex) {
    int client = -1;
    if (auto refusal = s->gw->gate.refuse_client(ex.request(), openai_error, client)) {
        co_await ex.respond(std::move(*refusal));
        co_return;
    }
    if (!s->configured) {
        Response none = gateway::error_response(
            404, "the files and vector stores API is not configured: add a [rag] table to server.conf", "not_found");
        co_await ex.respond(std::move(none));
        co_return;
    }
    if (!s->dirty) {
        Response none = gateway::error_response(
            503, "the files and vector stores API runs in the dirty pool: set dirty_workers = 1 or more", "unavailable");
        co_await ex.respond(std::move(none));
        co_return;
    }
    // One request of the client key's (rpm); the embeddings of an upload or a search are the
    // server's work, not charged to its tpm.
    gateway::Pass pass(*s->gw, client);
    std::function<Response(const gateway::Refusal&)> refusal_answer = gateway::openai_refusal;
    bool go_on = co_await pass.admit(ex, false, refusal_answer);
    if (!go_on) co_return;
    std::string payload;
    if (auto refusal = build_request(*s, *e, *names, ex.request(), payload)) {
        co_await ex.respond(std::move(*refusal));
        co_return;
    }
    std::string_view kind = e->kind;
    DirtyResult result = co_await s->dirty->call(kind, std::move(payload), e->deadline);
    if (result.error == DirtyErrc::cancelled) co_return;   // the client went away: nobody reads
    Response r = response_of(result);
    if (e->polled) r.headers.push_back({"openai-poll-after-ms", poll_after_ms});
    co_await ex.respond(std::move(r));
}

}  // namespace

void add_rag_routes(Router& router, WorkerContext& context, std::shared_ptr<gateway::Gateway> gw) {
    auto s = std::make_shared<Shared>();
    s->gw = std::move(gw);
    s->dirty = context.dirty;
    s->configured = rag_configured(*context.config.app);
    RagSettings settings = load_rag_settings(*context.config.app, context.config.app_source);
    s->max_upload = std::min<std::size_t>(std::size_t(settings.max_file_bytes), max_upload_frame);
    install_grounded_chat(*s->gw, s->dirty, s->configured);
    for (const Endpoint& e : endpoints) {
        auto names = std::make_shared<std::vector<std::string>>(param_names(e.pattern));
        const Endpoint* ep = &e;
        router.add(e.method, e.pattern, AsyncHandler([s, ep, names](Exchange& ex) { return serve(s, ep, names, ex); }),
                   gateway::openai_stop());
    }
}

}  // namespace agente::rag
