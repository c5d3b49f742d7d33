#include "app/rag/api.hpp"

#include "app/common/postgres.hpp"
#include "app/json_text.hpp"
#include "app/rag/openai_json.hpp"
#include "app/rag/wire.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <functional>
#include <map>

namespace agente::rag {

namespace {

using nlohmann::json;

// A reply other than 200, thrown from deep inside an operation.
struct Refusal {
    int status;
    std::string message;
    std::string code;
};

[[noreturn]] void refuse(int status, std::string message, std::string code = {}) {
    throw Refusal{status, std::move(message), std::move(code)};
}

std::string ok(const json& body) { return wire::pack(json{{"status", 200}, {"body", body}}); }

// ok()'s head starts with its "body" (an object's keys are written sorted); a refusal has none.
constexpr std::string_view ok_head = R"({"body":)";

std::string arg(const json& args, const char* key) {
    auto it = args.find(key);
    return it != args.end() && it->is_string() ? it->get<std::string>() : std::string();
}

ListQuery list_query(const json& args) {
    ListQuery q;
    std::string limit = arg(args, "limit");
    if (!limit.empty()) {
        char* end = nullptr;
        long n = std::strtol(limit.c_str(), &end, 10);
        if (*end || n < 1 || n > 100) refuse(400, "limit: expected an integer between 1 and 100");
        q.limit = int(n);
    }
    q.after = arg(args, "after");
    q.before = arg(args, "before");
    std::string order = arg(args, "order");
    if (!order.empty() && order != "asc" && order != "desc") refuse(400, "order: expected asc or desc");
    q.ascending = order == "asc";
    q.status = arg(args, "filter");
    if (!q.status.empty() && q.status != "in_progress" && q.status != "completed" && q.status != "failed" &&
        q.status != "cancelled")
        refuse(400, "filter: expected in_progress, completed, failed or cancelled");
    return q;
}

const json& body_of(const json& args) {
    static const json empty = json::object();
    auto it = args.find("body");
    if (it == args.end() || it->is_null()) return empty;
    if (!it->is_object()) refuse(400, "expected a JSON object");
    return *it;
}

// An object field as JSON text ("{}" when absent); `what` names it in the 400.
std::string object_text(const json& body, const char* key) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return "{}";
    if (!it->is_object()) refuse(400, std::string(key) + ": expected an object");
    return json_text(*it);
}

std::optional<std::string> optional_object_text(const json& body, const char* key) {
    if (!body.contains(key)) return std::nullopt;
    return object_text(body, key);
}

ChunkingOptions chunking_of(const json& body) {
    std::string problem;
    auto it = body.find("chunking_strategy");
    auto c = parse_chunking(it == body.end() ? nullptr : &*it, problem);
    if (!c) refuse(400, problem);
    return *c;
}

std::vector<std::string> file_ids_of(const json& body) {
    auto it = body.find("file_ids");
    if (it == body.end() || it->is_null()) return {};
    if (!it->is_array()) refuse(400, "file_ids: expected a list of file ids");
    if (it->size() > max_file_ids_per_request)
        refuse(400, "file_ids: more than " + std::to_string(max_file_ids_per_request) + " files");
    std::vector<std::string> ids;
    for (auto& id : *it) {
        if (!id.is_string()) refuse(400, "file_ids: expected a list of file ids");
        ids.push_back(id.get<std::string>());
    }
    return ids;
}

StoreRecord store_or_404(Store& db, const std::string& id) {
    auto s = db.store(id);
    if (!s) refuse(404, "No vector store found with id '" + id + "'.", "not_found");
    return *s;
}

// Attaches, refusing an unknown file (404) or a full store (400).
AttachmentRecord attach_checked(Store& db, const StoreRecord& s, const std::string& file_id,
                                const std::string& attributes, const ChunkingOptions& chunking,
                                const std::string& batch_id = {}) {
    if (!db.file(file_id)) refuse(404, "No file found with id '" + file_id + "'.", "not_found");
    if (s.counts.total >= max_files_per_store && !db.attachment(s.id, file_id))
        refuse(400, "vector store " + s.id + " holds " + std::to_string(max_files_per_store) + " files already");
    try {
        return db.attach(s.id, file_id, attributes, chunking, batch_id);
    } catch (const std::invalid_argument& e) {
        refuse(404, e.what(), "not_found");
    }
}

json deleted(const std::string& id, const char* object) {
    return {{"id", id}, {"object", object}, {"deleted", true}};
}

// ---- the operations ---------------------------------------------------------------------------

using Op = std::function<std::string(Engine&, const json& args, std::string_view data)>;

std::string files_create(Engine& e, const json& args, std::string_view data) {
    if (long(data.size()) > e.settings().max_file_bytes)
        refuse(413, "file larger than " + std::to_string(e.settings().max_file_bytes) + " bytes", "file_too_large");
    std::string filename = arg(args, "filename");
    if (filename.empty()) refuse(400, "file: the part has no filename");
    auto l = e.db();
    return ok(file_json(l->add_file(filename, arg(args, "purpose"), arg(args, "content_type"), data)));
}

std::string files_list(Engine& e, const json& args, std::string_view) {
    auto l = e.db();
    Page<FileRecord> page = l->files(list_query(args), arg(args, "purpose"));
    json data = json::array();
    for (auto& f : page.items) data.push_back(file_json(f));
    return ok(list_json(std::move(data), page.has_more));
}

std::string files_get(Engine& e, const json& args, std::string_view) {
    auto l = e.db();
    auto f = l->file(arg(args, "file_id"));
    if (!f) refuse(404, "No file found with id '" + arg(args, "file_id") + "'.", "not_found");
    return ok(file_json(*f));
}

std::string files_content(Engine& e, const json& args, std::string_view) {
    auto l = e.db();
    auto f = l->file(arg(args, "file_id"));
    auto bytes = f ? l->file_content(f->id) : std::nullopt;
    if (!bytes) refuse(404, "No file found with id '" + arg(args, "file_id") + "'.", "not_found");
    std::string type = f->content_type.empty() ? "application/octet-stream" : f->content_type;
    return wire::pack(json{{"status", 200}, {"content_type", type}}, *bytes);
}

std::string files_delete(Engine& e, const json& args, std::string_view) {
    std::string id = arg(args, "file_id");
    auto l = e.db();
    if (!l->delete_file(id)) refuse(404, "No file found with id '" + id + "'.", "not_found");
    return ok(deleted(id, "file"));
}

std::string stores_create(Engine& e, const json& args, std::string_view) {
    const json& body = body_of(args);
    std::string name = body.contains("name") && body["name"].is_string() ? body["name"].get<std::string>() : "";
    std::vector<std::string> ids = file_ids_of(body);
    ChunkingOptions chunking = chunking_of(body);
    std::string metadata = object_text(body, "metadata");
    auto l = e.db();
    for (auto& id : ids)
        if (!l->file(id)) refuse(404, "No file found with id '" + id + "'.", "not_found");
    StoreRecord s = l->create_store(name, e.settings().language, metadata);
    for (auto& id : ids) attach_checked(*l, s, id, "{}", chunking);
    if (!ids.empty()) e.wake();
    return ok(store_json(store_or_404(*l, s.id)));
}

std::string stores_list(Engine& e, const json& args, std::string_view) {
    auto l = e.db();
    Page<StoreRecord> page = l->stores(list_query(args));
    json data = json::array();
    for (auto& s : page.items) data.push_back(store_json(s));
    return ok(list_json(std::move(data), page.has_more));
}

std::string stores_get(Engine& e, const json& args, std::string_view) {
    auto l = e.db();
    return ok(store_json(store_or_404(*l, arg(args, "store_id"))));
}

std::string stores_update(Engine& e, const json& args, std::string_view) {
    const json& body = body_of(args);
    std::optional<std::string> name;
    if (body.contains("name") && body["name"].is_string()) name = body["name"].get<std::string>();
    std::optional<std::string> metadata = optional_object_text(body, "metadata");
    std::string id = arg(args, "store_id");
    auto l = e.db();
    if (!l->update_store(id, name, metadata)) store_or_404(*l, id);
    return ok(store_json(store_or_404(*l, id)));
}

std::string stores_delete(Engine& e, const json& args, std::string_view) {
    std::string id = arg(args, "store_id");
    if (!e.delete_store(id)) refuse(404, "No vector store found with id '" + id + "'.", "not_found");
    return ok(deleted(id, "vector_store.deleted"));
}

std::string store_files_create(Engine& e, const json& args, std::string_view) {
    const json& body = body_of(args);
    if (!body.contains("file_id") || !body["file_id"].is_string()) refuse(400, "file_id: expected a file id");
    std::string attributes = object_text(body, "attributes");
    ChunkingOptions chunking = chunking_of(body);
    auto l = e.db();
    StoreRecord s = store_or_404(*l, arg(args, "store_id"));
    AttachmentRecord a = attach_checked(*l, s, body["file_id"].get<std::string>(), attributes, chunking);
    e.wake();
    return ok(attachment_json(a));
}

std::string store_files_list(Engine& e, const json& args, std::string_view) {
    ListQuery q = list_query(args);
    q.batch_id = arg(args, "batch_id");
    auto l = e.db();
    std::string store = store_or_404(*l, arg(args, "store_id")).id;
    if (!q.batch_id.empty() && !l->batch_exists(store, q.batch_id))
        refuse(404, "No file batch found with id '" + q.batch_id + "'.", "not_found");
    Page<AttachmentRecord> page = l->attachments(store, q);
    json data = json::array();
    for (auto& a : page.items) data.push_back(attachment_json(a));
    return ok(list_json(std::move(data), page.has_more));
}

AttachmentRecord attachment_or_404(Store& db, const json& args) {
    std::string store = store_or_404(db, arg(args, "store_id")).id;
    auto a = db.attachment(store, arg(args, "file_id"));
    if (!a) refuse(404, "No file found with id '" + arg(args, "file_id") + "' in vector store " + store + ".", "not_found");
    return *a;
}

std::string store_files_get(Engine& e, const json& args, std::string_view) {
    auto l = e.db();
    return ok(attachment_json(attachment_or_404(*l, args)));
}

std::string store_files_update(Engine& e, const json& args, std::string_view) {
    std::string attributes = object_text(body_of(args), "attributes");
    auto l = e.db();
    AttachmentRecord a = attachment_or_404(*l, args);
    l->update_attributes(a.store_id, a.file_id, attributes);
    return ok(attachment_json(attachment_or_404(*l, args)));
}

std::string store_files_delete(Engine& e, const json& args, std::string_view) {
    auto l = e.db();
    AttachmentRecord a = attachment_or_404(*l, args);
    l->detach(a.store_id, a.file_id);
    return ok(deleted(a.file_id, "vector_store.file.deleted"));
}

std::string batch_reply(Store& db, const std::string& store, const std::string& batch) {
    return ok(batch_json(batch, store, db.batch_created_at(batch), db.batch_counts(batch)));
}

std::string batches_create(Engine& e, const json& args, std::string_view) {
    const json& body = body_of(args);
    struct Item {
        std::string file_id, attributes;
        ChunkingOptions chunking;
    };
    std::vector<Item> items;
    std::string attributes = object_text(body, "attributes");
    ChunkingOptions chunking = chunking_of(body);
    for (auto& id : file_ids_of(body)) items.push_back({id, attributes, chunking});
    if (auto files = body.find("files"); files != body.end() && !files->is_null()) {   // per-file settings
        if (!files->is_array() || files->size() > max_file_ids_per_request)
            refuse(400, "files: expected a list of at most " + std::to_string(max_file_ids_per_request) + " files");
        for (auto& f : *files) {
            if (!f.is_object() || !f.contains("file_id") || !f["file_id"].is_string())
                refuse(400, "files: each entry needs a file_id");
            items.push_back({f["file_id"].get<std::string>(), f.contains("attributes") ? object_text(f, "attributes") : attributes,
                             f.contains("chunking_strategy") ? chunking_of(f) : chunking});
        }
    }
    if (items.empty()) refuse(400, "file_ids: expected at least one file id");
    auto l = e.db();
    StoreRecord s = store_or_404(*l, arg(args, "store_id"));
    for (auto& it : items)
        if (!l->file(it.file_id)) refuse(404, "No file found with id '" + it.file_id + "'.", "not_found");
    std::string batch = l->create_batch(s.id);
    for (auto& it : items) attach_checked(*l, s, it.file_id, it.attributes, it.chunking, batch);
    e.wake();
    return batch_reply(*l, s.id, batch);
}

std::string batch_checked(Store& db, const json& args, std::string& store) {
    store = store_or_404(db, arg(args, "store_id")).id;
    std::string batch = arg(args, "batch_id");
    if (!db.batch_exists(store, batch)) refuse(404, "No file batch found with id '" + batch + "'.", "not_found");
    return batch;
}

std::string batches_get(Engine& e, const json& args, std::string_view) {
    auto l = e.db();
    std::string store;
    std::string batch = batch_checked(*l, args, store);
    return batch_reply(*l, store, batch);
}

std::string batches_cancel(Engine& e, const json& args, std::string_view) {
    auto l = e.db();
    std::string store;
    std::string batch = batch_checked(*l, args, store);
    l->cancel_batch(batch);
    return batch_reply(*l, store, batch);
}

std::string search(Engine& e, const json& args, std::string_view) {
    std::string problem;
    auto request = parse_search_request(body_of(args), problem);
    if (!request) refuse(400, problem);
    // A grounded chat names its stores as server.conf does: by id, or by the name the CLI gave.
    std::string name = arg(args, "store_name");
    if (!name.empty()) return ok(search_page_json(e.search_named(name, *request)));
    return ok(search_page_json(e.search(arg(args, "store_id"), *request)));
}

const std::map<std::string, Op, std::less<>>& operations() {
    static const std::map<std::string, Op, std::less<>> ops = {
        {"files.create", files_create},           {"files.list", files_list},
        {"files.get", files_get},                 {"files.content", files_content},
        {"files.delete", files_delete},           {"stores.create", stores_create},
        {"stores.list", stores_list},             {"stores.get", stores_get},
        {"stores.update", stores_update},         {"stores.delete", stores_delete},
        {"store_files.create", store_files_create}, {"store_files.list", store_files_list},
        {"store_files.get", store_files_get},     {"store_files.update", store_files_update},
        {"store_files.delete", store_files_delete}, {"batches.create", batches_create},
        {"batches.get", batches_get},             {"batches.cancel", batches_cancel},
        {"search", search},
    };
    return ops;
}

std::string refusal(int status, const std::string& message, const std::string& code) {
    return wire::pack(json{{"status", status}, {"error", message}, {"code", code}});
}

}  // namespace

std::string run_api(Engine& engine, std::string_view packed_request) {
    wire::Unpacked in = wire::unpack(packed_request);
    if (!in.head.is_object()) return refusal(400, "malformed request", "");
    std::string op = arg(in.head, "op");
    auto it = operations().find(op);
    if (it == operations().end()) return refusal(400, "unknown operation " + op, "");
    try {
        try {
            return it->second(engine, in.head, in.tail);
        } catch (const pg::Error& e) {
            // PostgreSQL down, restarting or not migrated: the client may try again later. A statement
            // it refused is this build's bug, a 500 below.
            if (!database_unavailable(e)) throw;
            spdlog::warn("rag: {}: {}", op, e.what());
            return refusal(503, std::string("the RAG store is unavailable: ") + e.what(), "");
        }
    } catch (const Refusal& r) {
        return refusal(r.status, r.message, r.code);
    } catch (const RagError& e) {
        return refusal(e.status(), e.what(), "");
    } catch (const ModelMismatch& e) {
        return refusal(409, e.what(), "");
    } catch (const nlohmann::json::exception& e) {
        return refusal(400, std::string("bad request: ") + e.what(), "");
    } catch (const std::exception& e) {
        spdlog::error("rag: {}: {}", op, e.what());
        return refusal(500, std::string("the RAG store failed: ") + e.what(), "server_error");
    }
}

bool is_refusal(std::string_view answer) { return !answer.starts_with(ok_head); }

}  // namespace agente::rag
