// The RAG state as the engine sees it: uploaded files, vector stores, the files attached to each
// (with attributes and OpenAI's ingest status), chunks with a full-text index, and embeddings cached
// by (model, content hash), so an unchanged chunk is never embedded twice. Two implementations of
// the Store interface below: SQLite in the state directory (sqlite_store.hpp, the embedded default)
// and PostgreSQL shared by several machines (pg_store.hpp, when [cluster] postgres_url is set). Both
// keep the same crash safety: a file's chunks and its `completed` status are written in one
// transaction; embeddings batch by batch; an interrupted ingest is resumed by the next process.
#pragma once

#include "app/rag/chunker.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace agente::rag {

struct FileRecord {
    std::string id;               // "file-..."
    std::string filename;
    std::string purpose;
    std::string content_type;
    long bytes = 0;
    long created_at = 0;          // Unix seconds
    std::string sha256;           // of the content, hex
};

struct FileCounts {
    long in_progress = 0, completed = 0, failed = 0, cancelled = 0, total = 0;
};

struct StoreRecord {
    long rowid = 0;
    std::string id;               // "vs_..."
    std::string name;
    std::string language;         // the stemmer of its BM25 index
    std::string embedding_model;  // set by the first embedded file; "" until then
    int dims = 0;
    std::string metadata;         // JSON object
    long created_at = 0;
    long last_active_at = 0;
    long generation = 0;          // bumped by every change to what search sees
    long usage_bytes = 0;
    long chunks = 0;              // over its files (not in OpenAI's object: for /status and /metrics)
    FileCounts counts;
};

struct AttachmentRecord {
    long rowid = 0;
    std::string store_id;
    std::string file_id;
    std::string batch_id;         // "" when attached alone
    std::string attributes;       // JSON object
    std::string status;           // in_progress, completed, failed, cancelled
    std::string error_code;       // with failed: server_error, unsupported_file, invalid_file
    std::string error_message;
    ChunkingOptions chunking;
    long created_at = 0;
    long usage_bytes = 0;
    long chunks = 0;
    long embedded = 0;            // chunks embedded by its ingest (not found in the cache)
};

// A chunk as stored: the chunker's, with its content hash (what the embedding cache is keyed by).
struct StoredChunk {
    Chunk chunk;
    std::string hash;             // 32 raw bytes, SHA-256 of embedding_text()
};

// The text that is embedded for a chunk: its heading path, then its text, so that a chunk of a
// section is found by the section's subject too.
std::string embedding_text(const Chunk& c);
std::string heading_text(const std::vector<std::string>& headings);   // "A > B > C"
std::string chunk_hash(const Chunk& c);   // SHA-256 of embedding_text(c), raw bytes

// A file handed to one process to ingest.
struct Claim {
    long attachment = 0;
    long store = 0;               // the store's rowid
    std::string store_id;
    std::string file_id;
    ChunkingOptions chunking;
    int attempt = 0;              // 1 for the first
};

// A change of embedding model for a store that has vectors already: never a silent mix.
class ModelMismatch : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
// ModelMismatch's words: the store holds `have` (of have_dims), the file was embedded with `model`.
std::string model_mismatch_message(const std::string& store_id, const std::string& have, int have_dims,
                                   const std::string& model, int dims);

// A page of a list, OpenAI's cursor style: `after` an id, newest first unless order is "asc".
struct ListQuery {
    int limit = 20;
    std::string after;
    std::string before;
    bool ascending = false;
    std::string status;           // attachments only: "" for all
    std::string batch_id;         // attachments only
};

template <class T>
struct Page {
    std::vector<T> items;
    bool has_more = false;
};

struct Vector {
    long chunk = 0;
    long attachment = 0;
    std::vector<float> values;
};

struct ChunkRow {
    long id = 0;
    long attachment = 0;
    int seq = 0;
    std::string heading;
    std::string text;
    int page = 0;
};

struct AttachmentMeta {
    long rowid = 0;
    std::string file_id;
    std::string filename;
    std::string attributes;       // JSON object
};

// What the engine keeps its state in: SQLite in the state directory (sqlite_store.hpp, the embedded
// default), or PostgreSQL when [cluster] postgres_url names a server (pg_store.hpp), shared by every
// machine. One object is one connection: one thread at a time; every call blocks (disk, network).
class Store {
public:
    virtual ~Store() = default;

    // Files.
    virtual FileRecord add_file(const std::string& filename, const std::string& purpose, const std::string& content_type,
                        std::string_view bytes) = 0;
    virtual std::optional<FileRecord> file(const std::string& id) = 0;
    virtual Page<FileRecord> files(const ListQuery& q, const std::string& purpose = {}) = 0;
    virtual std::optional<std::string> file_content(const std::string& id) = 0;
    // Removes the file from every store it is attached to, then the file. false: no such file.
    virtual bool delete_file(const std::string& id) = 0;

    // Vector stores.
    virtual StoreRecord create_store(const std::string& name, const std::string& language, const std::string& metadata) = 0;
    virtual std::optional<StoreRecord> store(const std::string& id) = 0;
    // The newest store of that name (the CLI names stores), if any.
    virtual std::optional<StoreRecord> store_named(const std::string& name) = 0;
    virtual Page<StoreRecord> stores(const ListQuery& q) = 0;
    virtual bool update_store(const std::string& id, const std::optional<std::string>& name,
                      const std::optional<std::string>& metadata) = 0;
    virtual bool delete_store(const std::string& id) = 0;

    // Attachments. attach() of a file already in the store updates its attributes; one that failed
    // or was cancelled starts again. Throws std::invalid_argument for an unknown store or file.
    virtual AttachmentRecord attach(const std::string& store_id, const std::string& file_id, const std::string& attributes,
                            const ChunkingOptions& chunking, const std::string& batch_id = {}) = 0;
    virtual std::optional<AttachmentRecord> attachment(const std::string& store_id, const std::string& file_id) = 0;
    virtual Page<AttachmentRecord> attachments(const std::string& store_id, const ListQuery& q) = 0;
    // The newest attachment in the store of a file of that name (the CLI's path), if any.
    virtual std::optional<std::pair<AttachmentRecord, FileRecord>> attachment_by_filename(const std::string& store_id,
                                                                                 const std::string& filename) = 0;
    virtual bool update_attributes(const std::string& store_id, const std::string& file_id, const std::string& attributes) = 0;
    virtual bool detach(const std::string& store_id, const std::string& file_id) = 0;
    virtual std::string create_batch(const std::string& store_id) = 0;
    virtual bool batch_exists(const std::string& store_id, const std::string& batch_id) = 0;
    virtual FileCounts batch_counts(const std::string& batch_id) = 0;
    virtual long batch_created_at(const std::string& batch_id) = 0;
    // Marks the batch's files still in progress cancelled; their ingest stops at its next step.
    virtual void cancel_batch(const std::string& batch_id) = 0;

    // Ingest.
    virtual std::optional<Claim> claim_next(const std::string& owner, int max_attempts) = 0;
    // Claims one attachment (the CLI ingests what it attached); nullopt when it is not in progress or
    // a live process has it.
    virtual std::optional<Claim> claim(long attachment, const std::string& owner) = 0;
    // Still ours to finish: in progress and owned by `owner` (a cancel or a detach says no).
    virtual bool still_claimed(long attachment, const std::string& owner) = 0;
    // Cached vectors of these hashes under `model` (the rest are to be embedded); `dims` of those found.
    virtual std::vector<std::optional<std::vector<float>>> cached_vectors(const std::string& model,
                                                                 const std::vector<std::string>& hashes) = 0;
    virtual void put_vectors(const std::string& model, const std::vector<std::string>& hashes,
                     const std::vector<std::vector<float>>& vectors) = 0;
    // The ingest's end, in one transaction: chunks, BM25 rows, `completed`. false when the claim was
    // lost meanwhile (cancelled, detached). `model` "" for a store without vectors. Throws
    // ModelMismatch when the store holds vectors of another model or size.
    virtual bool complete(const Claim& c, const std::string& owner, const std::vector<StoredChunk>& chunks,
                  const std::string& model, int dims, long embedded) = 0;
    virtual void fail(long attachment, const std::string& owner, const std::string& code, const std::string& message) = 0;
    // Gives a claim back untouched (this process stops): the next process resumes it.
    virtual void release(long attachment, const std::string& owner) = 0;

    // Search's reads.
    virtual long generation(long store_rowid) = 0;
    virtual std::vector<Vector> vectors(long store_rowid, const std::string& model, long after_chunk) = 0;
    virtual std::vector<long> chunk_ids(long store_rowid) = 0;
    virtual bool has_chunks(long store_rowid) = 0;
    virtual std::vector<AttachmentMeta> completed_attachments(long store_rowid) = 0;
    // BM25 ranking (best first) of the store's chunks for `query`, within `allowed` attachments when
    // given. Scores are positive, larger is better.
    virtual std::vector<std::pair<long, double>> bm25(long store_rowid, const std::string& query, int limit,
                                              const std::optional<std::vector<long>>& allowed) = 0;
    virtual std::vector<ChunkRow> chunks(const std::vector<long>& ids) = 0;
    virtual void touch_store(long store_rowid) = 0;

    // Whether the database serves vector search itself (PostgreSQL with pgvector): then the engine
    // holds no index of its own (index_cache.hpp loads no vectors) and asks nearest().
    virtual bool searches_vectors() const { return false; }
    // The `limit` chunks of the store nearest to `query` (vectors of `model`), within `allowed`
    // attachments when given, best first, with their cosine similarity. Only when searches_vectors().
    virtual std::vector<std::pair<long, double>> nearest(long store_rowid, const std::string& model,
                                                         const std::vector<float>& query, int limit,
                                                         const std::optional<std::vector<long>>& allowed, int ef_search) {
        (void)store_rowid, (void)model, (void)query, (void)limit, (void)allowed, (void)ef_search;
        return {};
    }
};

// A new store's record (id, times, metadata "{}" when empty), before either store writes it; throws
// std::invalid_argument for a language no stemmer knows.
StoreRecord new_store_record(const std::string& name, const std::string& language, const std::string& metadata);

// "vs_" / "file-" / "vsfb_" followed by 32 hex digits of randomness.
std::string new_id(const std::string& prefix);
long now_seconds();
std::string sha256_hex(std::string_view bytes);

}  // namespace agente::rag
