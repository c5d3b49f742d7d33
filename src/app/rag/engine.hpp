// The RAG engine: what runs inside a dirty worker (and the operator's CLI). It ingests attached files
// (parse, chunk, embed what the cache lacks, write in one transaction), searches stores (BM25 and
// vectors fused by RRF, OpenAI's filters inside the search), and hands out the catalogue (files,
// stores, attachments) on a SQLite connection per thread. Every call may block: none may run on an
// HTTP worker's loop.
//
// The database is the queue: an attachment `in_progress` with no live owner is work for whichever
// process claims it next, so an attach answered by one dirty worker, a server killed mid-ingest or
// an interrupted CLI all end the same way: the file is ingested by someone, or fails visibly.
#pragma once

#include "app/cluster/settings.hpp"
#include "app/rag/embedder.hpp"
#include "app/rag/filters.hpp"
#include "app/rag/index_cache.hpp"
#include "app/rag/settings.hpp"
#include "app/rag/store.hpp"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace agente::rag {

// A request the engine refuses, with the HTTP status it deserves (404 unknown store, 400 bad
// request, 409 model mismatch, 503 no embedding model).
class RagError : public std::runtime_error {
public:
    RagError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
    int status() const { return status_; }

private:
    int status_;
};

enum class Ranker { hybrid, vector, text };
// OpenAI's rankers ("auto", "default-2024-11-15", "none") are hybrid; "vector" and "bm25" (or
// "keyword", "text") select one ranking. nullopt for anything else.
std::optional<Ranker> parse_ranker(const std::string& name);

struct SearchRequest {
    std::string query;
    int max_num_results = 10;                 // OpenAI's 1..50
    std::optional<Filter> filter;
    Ranker ranker = Ranker::hybrid;
    double score_threshold = 0;
    std::optional<double> embedding_weight;   // ranking_options.hybrid_search; default: [rag]'s
    std::optional<double> text_weight;
};

struct SearchHit {
    std::string file_id;
    std::string filename;
    double score = 0;            // hybrid: RRF normalized to 0..1; vector: cosine; text: b / (1 + b)
    nlohmann::json attributes;
    std::string text;
    std::string heading;         // "A > B" of the chunk's section
    int page = 0;                // PDF page, 0 otherwise
    int chunk = 0;               // the chunk's position in its file
    double similarity = 0;       // cosine similarity, when the vector ranking found it
    int vector_rank = 0;         // 1-based, 0: not in that ranking
    int text_rank = 0;
};

struct SearchPage {
    std::string query;
    std::vector<SearchHit> hits;
};

struct IngestOutcome {
    std::string status;          // completed, failed, cancelled, or in_progress (handed back)
    long chunks = 0;
    long embedded = 0;           // chunks embedded now
    long reused = 0;             // chunks whose vectors the cache had
    std::string error;
};

// The CLI's `rag ingest` summary.
struct IngestSummary {
    long files = 0, chunks = 0, embedded = 0, skipped = 0, failed = 0;
    std::vector<std::string> failures;   // "path: why"
};
using IngestProgress = std::function<void(const std::string& path, std::size_t done, std::size_t total)>;

class Engine {
public:
    // `embedder` may be null: stores then have no vectors (keyword search only). With
    // cluster.uses_postgres() the state lives in PostgreSQL (pg_store.hpp), connected on first use
    // (a server down at start only makes the RAG calls fail until it is back); otherwise in
    // rag.sqlite3, opened and migrated now.
    Engine(RagSettings settings, std::shared_ptr<Embedder> embedder, cluster::ClusterSettings cluster = {});
    ~Engine();   // stops the background ingest (a file being embedded is handed back) and the builder
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    const RagSettings& settings() const { return settings_; }
    // rag.sqlite3's path, or the PostgreSQL URL with its password masked: for logs.
    const std::string& database_path() const { return path_; }

    // This thread's connection, opened on first use; returned to the pool with the lease.
    class Lease {
    public:
        Lease(Engine& e, std::unique_ptr<Store> s) : e_(&e), s_(std::move(s)) {}
        Lease(Lease&&) = default;
        ~Lease();
        Store* operator->() { return s_.get(); }
        Store& operator*() { return *s_; }

    private:
        Engine* e_;
        std::unique_ptr<Store> s_;
    };
    Lease db();

    // Ingest. ingest_next() claims one file and ingests it; nullopt when there was nothing to do.
    std::optional<IngestOutcome> ingest_next();
    IngestOutcome ingest(const Claim& claim);
    // A thread of this engine that ingests whatever is claimable, waking when told (wake()) or every
    // ingest_poll_interval to pick up other processes' attachments and orphans.
    void start_background_ingest();
    void wake();
    // Told each file's outcome by the background ingest (the server's /metrics); set before
    // start_background_ingest().
    void on_ingested(std::function<void(const IngestOutcome&)> observer) { on_ingested_ = std::move(observer); }

    // Search. Throws RagError.
    SearchPage search(const std::string& store_id, const SearchRequest& request);

    // The CLI: files and folders (recursively; hidden ones skipped) into the store named `store_name`
    // (created when missing). A path already in the store with the same bytes is skipped; with other
    // bytes it is replaced once the new version is ingested. Throws RagError for a path that does not
    // exist.
    IngestSummary ingest_paths(const std::string& store_name, const std::vector<std::string>& paths,
                               const IngestProgress& progress = {});
    SearchPage search_named(const std::string& store_name, const SearchRequest& request);

    // Deletes the store and drops its index from this process's memory. Other processes drop theirs
    // when their background ingest next finds it gone (sweep_indexes()).
    bool delete_store(const std::string& store_id);
    void sweep_indexes();

    std::size_t index_memory_bytes() { return indexes_.memory_bytes(); }
    IndexCache& indexes() { return indexes_; }

private:
    void background();
    // ingest_paths(): ingests `a` itself, or awaits the process that claimed it first.
    IngestOutcome ingest_or_await(Store& db, const AttachmentRecord& a, const std::string& file_id);
    IngestOutcome fail(Store& db, const Claim& c, const std::string& code, const std::string& message);
    IngestOutcome ingest_claimed(const Claim& claim);
    std::unique_ptr<Store> open_store();

    RagSettings settings_;
    std::shared_ptr<Embedder> embedder_;
    std::function<void(const IngestOutcome&)> on_ingested_;
    cluster::ClusterSettings cluster_;
    std::string path_;
    std::string owner_;
    IndexCache indexes_;
    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<Store>> pool_;
    // Claims this process holds but could not finish or give back while the store was unavailable
    // (PostgreSQL down mid-ingest): given back before the next claim, so the file is resumed
    // rather than left to this live process forever.
    std::mutex abandoned_mutex_;
    std::vector<long> abandoned_;
    std::atomic<bool> stopping_{false};
    std::mutex wake_mutex_;
    std::condition_variable wake_cv_;
    bool woken_ = false;
    std::thread ingest_thread_;
};

}  // namespace agente::rag
