// The [rag] table of server.conf: which gateway model embeds, where the store lives, how search ranks.
// Validation errors name server.conf's file:line.
#pragma once

#include <chrono>
#include <string>

namespace toml { inline namespace v3 { class table; } }

namespace agente::rag {

struct RagSettings {
    // A public model of the gateway ([models."NAME"]) whose targets serve /v1/embeddings. "": no
    // vectors at all (keyword search only).
    std::string embedding_model;
    std::string state_dir = "./var";         // $STATE_DIRECTORY wins when set
    std::string language = "english";        // the stemmer of a store created without one
    int embedding_batch_size = 64;           // texts per /v1/embeddings request
    std::chrono::milliseconds busy_timeout{5000};   // SQLite's wait for another process's write lock
    int max_ingest_attempts = 3;             // a file whose ingest was interrupted this often ends failed
    long max_file_bytes = 64L * 1024 * 1024;
    int max_chunks_per_file = 50'000;

    // Search.
    int rrf_k = 60;                          // reciprocal rank fusion's k (Cormack et al., 2009)
    double embedding_weight = 1.0;           // RRF weight of the vector ranking
    double text_weight = 1.0;                // RRF weight of the BM25 ranking
    int exact_search_below = 20'000;         // vectors in a store below which search is exact
    int hnsw_m = 16;
    int hnsw_ef_construction = 200;
    int hnsw_ef_search = 96;
    // Vectors added to (or removed from) a store's HNSW graph since it was last saved after which it
    // is saved again (rag-index/), and at a graceful stop whatever the count: a restart then loads a
    // graph at most this many changes behind instead of building it again. A save writes the whole
    // graph (about a second per 100,000 vectors of 512 dimensions), so not after every addition.
    int hnsw_save_every = 2000;
};

// Section validator for register_app_section(): throws ConfigError(file, line, ...).
void validate_rag_section(const toml::table& section, const std::string& file);

// [rag] from the app tables (absent: the defaults). An embedding_model that names no [models."NAME"]
// is an error at its line.
RagSettings load_rag_settings(const toml::table& app, const std::string& file);

// Whether the app's tables have a [rag] table: the files and vector stores API (and its database in
// the state directory) exists only then, so a server that does not use it opens nothing for it.
bool rag_configured(const toml::table& app);

// The directory of rag.sqlite3: $STATE_DIRECTORY when set, else state_dir.
std::string rag_directory(const RagSettings& settings);

// The stemmers a store may use: Snowball's algorithms (libstemmer), and "none".
bool known_language(const std::string& name);
std::string known_languages();

}  // namespace agente::rag
