// The RAG store in PostgreSQL, when [cluster] postgres_url names a server (schema: migration 2 of
// cluster/migrations.cpp): the same operations and crash safety as SQLite's (sqlite_store.hpp), shared
// by every machine, so a store filled through one host is searchable through all of them.
//
// - Full text: PostgreSQL's own, a tsvector per chunk built with its store's text search
//   configuration (the Snowball stemmer of its language; `simple` for a language PostgreSQL lacks)
//   under a GIN index, ranked by ts_rank with length normalization. The text index then lives once,
//   in the database, written in the transaction that completes a file: no machine keeps a copy of
//   every chunk's text to rank it. (Not BM25: ts_rank weighs no word by its rarity; the hybrid
//   ranking fuses ranks, not scores, so it is affected only through the order.)
// - Vectors: float32 bytes (bytea), portable to any PostgreSQL (pgvector is not in Debian 12). Each
//   machine's dirty pool holds the HNSW index built from them (index_cache.hpp) and brings it up to
//   date before a search whenever the store's generation (bumped in the same transactions as the
//   changes) moved: the counter is read with every search, so another host's ingest is seen by the
//   next search, with no message to lose.
// - Claims: an attachment being ingested names its owner process and host, with a heartbeat. A claim
//   of this host is checked as SQLite's are (the process is alive or not); one of another host stands
//   until its heartbeat is older than claim_lease, then the file is resumed here.
//
// One object is one connection, reconnected on the next call after PostgreSQL went away; every call
// blocks on the network: dirty-worker threads and the CLI only.
#pragma once

#include "app/cluster/settings.hpp"
#include "app/common/postgres.hpp"
#include "app/rag/store.hpp"

#include <chrono>
#include <memory>

namespace agente::rag {

// How long a claim of another host stands without a heartbeat (one with each embedding batch):
// longer than one batch's embedding call with its retries, so a live machine is never robbed.
inline constexpr std::chrono::seconds claim_lease{300};

class PgStore final : public Store {
public:
    // Connects and checks the schema; throws pg::Error saying why not.
    PgStore(const std::string& url, const pg::Options& options);

    FileRecord add_file(const std::string& filename, const std::string& purpose, const std::string& content_type,
                        std::string_view bytes) override;
    std::optional<FileRecord> file(const std::string& id) override;
    Page<FileRecord> files(const ListQuery& q, const std::string& purpose = {}) override;
    std::optional<std::string> file_content(const std::string& id) override;
    bool delete_file(const std::string& id) override;

    StoreRecord create_store(const std::string& name, const std::string& language, const std::string& metadata) override;
    std::optional<StoreRecord> store(const std::string& id) override;
    std::optional<StoreRecord> store_named(const std::string& name) override;
    Page<StoreRecord> stores(const ListQuery& q) override;
    bool update_store(const std::string& id, const std::optional<std::string>& name,
                      const std::optional<std::string>& metadata) override;
    bool delete_store(const std::string& id) override;

    AttachmentRecord attach(const std::string& store_id, const std::string& file_id, const std::string& attributes,
                            const ChunkingOptions& chunking, const std::string& batch_id = {}) override;
    std::optional<AttachmentRecord> attachment(const std::string& store_id, const std::string& file_id) override;
    Page<AttachmentRecord> attachments(const std::string& store_id, const ListQuery& q) override;
    std::optional<std::pair<AttachmentRecord, FileRecord>> attachment_by_filename(const std::string& store_id,
                                                                                 const std::string& filename) override;
    bool update_attributes(const std::string& store_id, const std::string& file_id, const std::string& attributes) override;
    bool detach(const std::string& store_id, const std::string& file_id) override;
    std::string create_batch(const std::string& store_id) override;
    bool batch_exists(const std::string& store_id, const std::string& batch_id) override;
    FileCounts batch_counts(const std::string& batch_id) override;
    long batch_created_at(const std::string& batch_id) override;
    void cancel_batch(const std::string& batch_id) override;

    std::optional<Claim> claim_next(const std::string& owner, int max_attempts) override;
    std::optional<Claim> claim(long attachment, const std::string& owner) override;
    bool still_claimed(long attachment, const std::string& owner) override;
    std::vector<std::optional<std::vector<float>>> cached_vectors(const std::string& model,
                                                                 const std::vector<std::string>& hashes) override;
    void put_vectors(const std::string& model, const std::vector<std::string>& hashes,
                     const std::vector<std::vector<float>>& vectors) override;
    bool complete(const Claim& c, const std::string& owner, const std::vector<StoredChunk>& chunks,
                  const std::string& model, int dims, long embedded) override;
    void fail(long attachment, const std::string& owner, const std::string& code, const std::string& message) override;
    void release(long attachment, const std::string& owner) override;

    long generation(long store_rowid) override;
    std::vector<Vector> vectors(long store_rowid, const std::string& model, long after_chunk) override;
    std::vector<long> chunk_ids(long store_rowid) override;
    bool has_chunks(long store_rowid) override;
    std::vector<AttachmentMeta> completed_attachments(long store_rowid) override;
    // ts_rank of the chunks matching any of the query's words (OR, as SQLite's BM25 query).
    std::vector<std::pair<long, double>> bm25(long store_rowid, const std::string& query, int limit,
                                              const std::optional<std::vector<long>>& allowed) override;
    std::vector<ChunkRow> chunks(const std::vector<long>& ids) override;
    void touch_store(long store_rowid) override;

    // pgvector: when the database's rag_embeddings has its `embedding` column (migration 3 adds it
    // where the extension is installed), vectors are searched there, through an HNSW index per
    // dimension, with iterative index scans so that a filter never leaves fewer than `limit` results
    // where that many chunks match.
    bool searches_vectors() const override { return pgvector_; }
    std::vector<std::pair<long, double>> nearest(long store_rowid, const std::string& model,
                                                 const std::vector<float>& query, int limit,
                                                 const std::optional<std::vector<long>>& allowed,
                                                 int ef_search) override;

private:
    void ensure_vector_index(int dims);
    std::optional<Claim> take(const pg::Result& r, int row, const std::string& owner);
    bool claim_alive(const std::string& owner, const std::string& host, long heartbeat, const std::string& me);
    void remove_attachment(long attachment, long store);
    StoreRecord read_store(const pg::Result& r, int row);

    pg::Connection c_;
    std::string host_;
    bool pgvector_ = false;
    std::vector<int> indexed_dims_;   // HNSW indexes known to exist
};

// Opens a PgStore for the engine; with settings.error (what the master accepted could not be read
// in this process), every open fails with it.
std::unique_ptr<Store> open_pg_store(const cluster::ClusterSettings& settings);

// pgvector's text form of a vector ("[0.5,-1,2.5e-07]"), each float exact.
std::string vector_text(const std::vector<float>& v);

// PostgreSQL's text form of bytea ("\x" and hex digits), both ways.
std::string bytea_text(std::string_view bytes);
std::string from_bytea_text(std::string_view text);

}  // namespace agente::rag
