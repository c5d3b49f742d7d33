#include "app/rag/openai_json.hpp"

#include "app/rag/chunker.hpp"

#include <algorithm>

namespace agente::rag {

namespace {

using nlohmann::json;

json object_or_empty(const std::string& text) {
    json j = json::parse(text, nullptr, false);
    return j.is_object() ? j : json::object();
}

json counts_json(const FileCounts& c) {
    return {{"in_progress", c.in_progress}, {"completed", c.completed}, {"failed", c.failed},
            {"cancelled", c.cancelled},     {"total", c.total}};
}

std::optional<double> number_in(const json& j, const char* key, double lo, double hi, const std::string& at,
                                std::string& problem, bool& bad) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number() || it->get<double>() < lo || it->get<double>() > hi) {
        problem = at + key + ": expected a number between " + json(lo).dump() + " and " + json(hi).dump();
        bad = true;
        return std::nullopt;
    }
    return it->get<double>();
}

}  // namespace

json file_json(const FileRecord& f) {
    return {{"id", f.id},         {"object", "file"},     {"bytes", f.bytes},      {"created_at", f.created_at},
            {"filename", f.filename}, {"purpose", f.purpose}, {"status", "processed"}, {"expires_at", nullptr}};
}

json store_json(const StoreRecord& s) {
    return {{"id", s.id},
            {"object", "vector_store"},
            {"created_at", s.created_at},
            {"name", s.name},
            {"usage_bytes", s.usage_bytes},
            {"file_counts", counts_json(s.counts)},
            {"status", s.counts.in_progress > 0 ? "in_progress" : "completed"},
            {"expires_after", nullptr},
            {"expires_at", nullptr},
            {"last_active_at", s.last_active_at},
            {"metadata", object_or_empty(s.metadata)}};
}

json attachment_json(const AttachmentRecord& a) {
    json error = nullptr;
    if (a.status == "failed") error = {{"code", a.error_code}, {"message", a.error_message}};
    return {{"id", a.file_id},
            {"object", "vector_store.file"},
            {"usage_bytes", a.usage_bytes},
            {"created_at", a.created_at},
            {"vector_store_id", a.store_id},
            {"status", a.status},
            {"last_error", error},
            {"chunking_strategy",
             {{"type", "static"},
              {"static", {{"max_chunk_size_tokens", a.chunking.max_tokens}, {"chunk_overlap_tokens", a.chunking.overlap_tokens}}}}},
            {"attributes", object_or_empty(a.attributes)}};
}

json batch_json(const std::string& id, const std::string& store_id, long created_at, const FileCounts& c) {
    std::string status = "completed";
    if (c.in_progress > 0) status = "in_progress";
    else if (c.cancelled > 0) status = "cancelled";
    else if (c.total > 0 && c.failed == c.total) status = "failed";
    return {{"id", id},           {"object", "vector_store.files_batch"}, {"created_at", created_at},
            {"vector_store_id", store_id}, {"status", status},             {"file_counts", counts_json(c)}};
}

json search_page_json(const SearchPage& page) {
    json data = json::array();
    for (const SearchHit& h : page.hits)
        data.push_back({{"file_id", h.file_id},
                        {"filename", h.filename},
                        {"score", h.score},
                        {"attributes", h.attributes.is_object() ? h.attributes : json::object()},
                        {"content", json::array({{{"type", "text"}, {"text", h.text}}})},
                        {"chunk", {{"section", h.heading}, {"page", h.page}, {"index", h.chunk}}}});
    return {{"object", "vector_store.search_results.page"},
            {"search_query", json::array({page.query})},
            {"data", std::move(data)},
            {"has_more", false},
            {"next_page", nullptr}};
}

json list_json(json data, bool has_more, const char* id_key) {
    json first = nullptr, last = nullptr;
    if (!data.empty()) {
        first = data.front().value(id_key, json());
        last = data.back().value(id_key, json());
    }
    return {{"object", "list"}, {"data", std::move(data)}, {"first_id", first}, {"last_id", last}, {"has_more", has_more}};
}

std::optional<SearchRequest> parse_search_request(const json& body, std::string& problem) {
    if (!body.is_object()) {
        problem = "expected a JSON object";
        return std::nullopt;
    }
    SearchRequest r;
    auto q = body.find("query");
    if (q != body.end() && q->is_string()) {
        r.query = q->get<std::string>();
    } else if (q != body.end() && q->is_array() && !q->empty()) {
        for (auto& part : *q) {   // several queries: searched as one
            if (!part.is_string()) {
                problem = "query: expected a string or a list of strings";
                return std::nullopt;
            }
            r.query += (r.query.empty() ? "" : " ") + part.get<std::string>();
        }
    } else {
        problem = "query: expected a string or a list of strings";
        return std::nullopt;
    }
    if (r.query.find_first_not_of(" \t\r\n") == std::string::npos) {
        problem = "query: empty";
        return std::nullopt;
    }
    if (r.query.size() > max_query_chars) {
        problem = "query: longer than " + std::to_string(max_query_chars) + " characters";
        return std::nullopt;
    }
    if (auto n = body.find("max_num_results"); n != body.end() && !n->is_null()) {
        if (!n->is_number_integer() || n->get<long>() < 1 || n->get<long>() > 50) {
            problem = "max_num_results: expected an integer between 1 and 50";
            return std::nullopt;
        }
        r.max_num_results = n->get<int>();
    }
    if (auto f = body.find("filters"); f != body.end() && !f->is_null()) {
        r.filter = parse_filter(*f, problem);
        if (!r.filter) return std::nullopt;
    }
    if (auto o = body.find("ranking_options"); o != body.end() && !o->is_null()) {
        if (!o->is_object()) {
            problem = "ranking_options: expected an object";
            return std::nullopt;
        }
        if (auto rk = o->find("ranker"); rk != o->end() && !rk->is_null()) {
            auto ranker = rk->is_string() ? parse_ranker(rk->get<std::string>()) : std::nullopt;
            if (!ranker) {
                problem = "ranking_options.ranker: expected auto, default-2024-11-15, none, hybrid, vector or bm25";
                return std::nullopt;
            }
            r.ranker = *ranker;
        }
        bool bad = false;
        r.score_threshold = number_in(*o, "score_threshold", 0, 1, "ranking_options.", problem, bad).value_or(0);
        if (bad) return std::nullopt;
        if (auto h = o->find("hybrid_search"); h != o->end() && h->is_object()) {
            r.embedding_weight = number_in(*h, "embedding_weight", 0, 100, "ranking_options.hybrid_search.", problem, bad);
            if (!bad) r.text_weight = number_in(*h, "text_weight", 0, 100, "ranking_options.hybrid_search.", problem, bad);
            if (bad) return std::nullopt;
        }
    }
    return r;
}

std::optional<ChunkingOptions> parse_chunking(const json* strategy, std::string& problem) {
    ChunkingOptions o;
    if (!strategy || strategy->is_null()) return o;
    std::string type = strategy->is_object() ? strategy->value("type", "") : "";
    if (type == "auto") return o;
    if (type != "static") {
        problem = "chunking_strategy.type: expected auto or static";
        return std::nullopt;
    }
    auto s = strategy->find("static");
    if (s == strategy->end() || !s->is_object() || !s->contains("max_chunk_size_tokens") ||
        !s->contains("chunk_overlap_tokens") || !(*s)["max_chunk_size_tokens"].is_number_integer() ||
        !(*s)["chunk_overlap_tokens"].is_number_integer()) {
        problem = "chunking_strategy.static: expected integers max_chunk_size_tokens and chunk_overlap_tokens";
        return std::nullopt;
    }
    // Read wide, so that a huge value is refused rather than wrapped into range.
    auto clamp = [](const json& v) { return int(std::clamp<long long>(v.get<long long>(), -1, max_chunk_tokens + 1)); };
    o.max_tokens = clamp((*s)["max_chunk_size_tokens"]);
    o.overlap_tokens = clamp((*s)["chunk_overlap_tokens"]);
    if (auto p = chunking_problem(o)) {
        problem = "chunking_strategy.static: " + *p;
        return std::nullopt;
    }
    return o;
}

}  // namespace agente::rag
