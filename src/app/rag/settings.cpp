// Reading and checking [rag]. Every error names the line of the offending value.
#include "app/rag/settings.hpp"

#include "app/common/state_dir.hpp"
#include "app/rag/stemmer_library.hpp"
#include "app/settings_reader.hpp"

#include <agente/config.hpp>

#include <toml++/toml.h>

#include <set>

namespace agente::rag {

namespace {

using namespace agente::app;

const std::set<std::string> rag_keys{"embedding_model", "state_dir", "language", "embedding_batch_size",
                                     "busy_timeout", "max_ingest_attempts", "max_file_size", "max_chunks_per_file",
                                     "rrf_k", "embedding_weight", "text_weight", "exact_search_below", "hnsw_m",
                                     "hnsw_ef_construction", "hnsw_ef_search", "hnsw_save_every"};

double get_weight(const toml::table& t, const std::string& file, const char* key, double fallback) {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    double v = 0;
    if (n->is_integer()) v = double(n->as_integer()->get());
    else if (n->is_floating_point()) v = n->as_floating_point()->get();
    else fail(file, *n, std::string("rag.") + key, "expected a number, got " + show(*n));
    if (!(v >= 0 && v <= 100)) fail(file, *n, std::string("rag.") + key, "expected 0..100, got " + show(*n));
    return v;
}

RagSettings read_rag(const toml::table& t, const std::string& file) {
    const std::string prefix = "rag.";
    check_keys(t, file, prefix, rag_keys);
    RagSettings s;
    s.embedding_model = get_string(t, file, prefix, "embedding_model");
    s.state_dir = get_string(t, file, prefix, "state_dir", s.state_dir, true);
    s.language = get_string(t, file, prefix, "language", s.language, true);
    if (!known_language(s.language))
        fail(file, *t.get("language"), prefix + "language",
             "unknown stemmer \"" + s.language + "\"; known: " + known_languages());
    s.embedding_batch_size = int(get_int(t, file, prefix, "embedding_batch_size", s.embedding_batch_size, 1, 2048));
    s.busy_timeout = get_seconds(t, file, prefix, "busy_timeout", s.busy_timeout, 0.001, 600);
    s.max_ingest_attempts = int(get_int(t, file, prefix, "max_ingest_attempts", s.max_ingest_attempts, 1, 100));
    s.max_file_bytes = get_int(t, file, prefix, "max_file_size", s.max_file_bytes, 1, 1L << 30);
    s.max_chunks_per_file = int(get_int(t, file, prefix, "max_chunks_per_file", s.max_chunks_per_file, 1, 10'000'000));
    s.rrf_k = int(get_int(t, file, prefix, "rrf_k", s.rrf_k, 0, 100'000));
    s.embedding_weight = get_weight(t, file, "embedding_weight", s.embedding_weight);
    s.text_weight = get_weight(t, file, "text_weight", s.text_weight);
    if (s.embedding_weight == 0 && s.text_weight == 0)
        fail(file, *t.get("text_weight"), prefix + "text_weight", "embedding_weight and text_weight cannot both be 0");
    s.exact_search_below = int(get_int(t, file, prefix, "exact_search_below", s.exact_search_below, 0, 100'000'000));
    s.hnsw_m = int(get_int(t, file, prefix, "hnsw_m", s.hnsw_m, 2, 128));
    s.hnsw_ef_construction = int(get_int(t, file, prefix, "hnsw_ef_construction", s.hnsw_ef_construction, 10, 4096));
    s.hnsw_ef_search = int(get_int(t, file, prefix, "hnsw_ef_search", s.hnsw_ef_search, 10, 4096));
    s.hnsw_save_every = int(get_int(t, file, prefix, "hnsw_save_every", s.hnsw_save_every, 1, 100'000'000));
    return s;
}

}  // namespace

bool known_language(const std::string& name) {
    if (name == "none") return true;
    std::string error;
    for (const std::string& l : stemmer_languages(error))
        if (name == l) return true;
    return false;
}

std::string known_languages() {
    std::string out = "none", error;
    std::vector<std::string> languages = stemmer_languages(error);
    if (!error.empty()) return out + " (no stemmer: " + error + ")";
    for (const std::string& l : languages) out.append(", ").append(l);
    return out;
}

void validate_rag_section(const toml::table& section, const std::string& file) { read_rag(section, file); }

RagSettings load_rag_settings(const toml::table& app, const std::string& file) {
    RagSettings s;
    const toml::table* rag = app.get_as<toml::table>("rag");
    if (!rag) return s;
    s = read_rag(*rag, file);
    const toml::table* models = app.get_as<toml::table>("models");
    if (!s.embedding_model.empty() && (!models || !models->get(s.embedding_model)))
        fail(file, *rag->get("embedding_model"), "rag.embedding_model",
             "unknown model \"" + s.embedding_model + "\" (add a [models.\"" + s.embedding_model + "\"] table)");
    return s;
}

bool rag_configured(const toml::table& app) { return app.get_as<toml::table>("rag") != nullptr; }

std::string rag_directory(const RagSettings& settings) { return app::state_directory(settings.state_dir); }

}  // namespace agente::rag
