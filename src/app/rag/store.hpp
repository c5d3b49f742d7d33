// The RAG state in SQLite (rag.sqlite3 in the state directory, WAL): uploaded files and their bytes,
// vector stores, the files attached to each (with attributes and OpenAI's ingest status), chunks, a
// BM25 index per store (FTS5, external content: the text lives once, in chunks), and embeddings
// cached by (model, content hash), so an unchanged chunk is never embedded twice.
//
// A Store is one connection: one thread at a time. Every call blocks on the disk.
//
// Crash safety: a file's chunks, their BM25 rows and its `completed` status are written in one
// transaction, so a process killed mid-ingest leaves the file `in_progress` with no chunks, never half
// of them; embeddings are committed batch by batch as they arrive, so the resumed ingest does not pay
// for them again. An attachment being ingested names its owner process (owner.hpp); claim_next()
// hands a file whose owner is gone to the next process that asks, and ends it `failed` once it has
// been interrupted max_attempts times (a file that crashes its parser every time).
#pragma once

#include "app/common/sqlite.hpp"
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

class Store {
public:
    // Opens (creating, migrating) the database; throws std::runtime_error naming the file.
    Store(const std::string& path, std::chrono::milliseconds busy_timeout);

    const std::string& path() const { return db_.path(); }
    int schema_version();
    sqlite::Db& db() { return db_; }

    // Files.
    FileRecord add_file(const std::string& filename, const std::string& purpose, const std::string& content_type,
                        std::string_view bytes);
    std::optional<FileRecord> file(const std::string& id);
    Page<FileRecord> files(const ListQuery& q, const std::string& purpose = {});
    std::optional<std::string> file_content(const std::string& id);
    // Removes the file from every store it is attached to, then the file. false: no such file.
    bool delete_file(const std::string& id);

    // Vector stores.
    StoreRecord create_store(const std::string& name, const std::string& language, const std::string& metadata);
    std::optional<StoreRecord> store(const std::string& id);
    // The newest store of that name (the CLI names stores), if any.
    std::optional<StoreRecord> store_named(const std::string& name);
    Page<StoreRecord> stores(const ListQuery& q);
    bool update_store(const std::string& id, const std::optional<std::string>& name,
                      const std::optional<std::string>& metadata);
    bool delete_store(const std::string& id);

    // Attachments. attach() of a file already in the store updates its attributes; one that failed
    // or was cancelled starts again. Throws std::invalid_argument for an unknown store or file.
    AttachmentRecord attach(const std::string& store_id, const std::string& file_id, const std::string& attributes,
                            const ChunkingOptions& chunking, const std::string& batch_id = {});
    std::optional<AttachmentRecord> attachment(const std::string& store_id, const std::string& file_id);
    Page<AttachmentRecord> attachments(const std::string& store_id, const ListQuery& q);
    // The newest attachment in the store of a file of that name (the CLI's path), if any.
    std::optional<std::pair<AttachmentRecord, FileRecord>> attachment_by_filename(const std::string& store_id,
                                                                                 const std::string& filename);
    bool update_attributes(const std::string& store_id, const std::string& file_id, const std::string& attributes);
    bool detach(const std::string& store_id, const std::string& file_id);
    std::string create_batch(const std::string& store_id);
    bool batch_exists(const std::string& store_id, const std::string& batch_id);
    FileCounts batch_counts(const std::string& batch_id);
    long batch_created_at(const std::string& batch_id);
    // Marks the batch's files still in progress cancelled; their ingest stops at its next step.
    void cancel_batch(const std::string& batch_id);

    // Ingest.
    std::optional<Claim> claim_next(const std::string& owner, int max_attempts);
    // Claims one attachment (the CLI ingests what it attached); nullopt when it is not in progress or
    // a live process has it.
    std::optional<Claim> claim(long attachment, const std::string& owner);
    // Still ours to finish: in progress and owned by `owner` (a cancel or a detach says no).
    bool still_claimed(long attachment, const std::string& owner);
    // Cached vectors of these hashes under `model` (the rest are to be embedded); `dims` of those found.
    std::vector<std::optional<std::vector<float>>> cached_vectors(const std::string& model,
                                                                 const std::vector<std::string>& hashes);
    void put_vectors(const std::string& model, const std::vector<std::string>& hashes,
                     const std::vector<std::vector<float>>& vectors);
    // The ingest's end, in one transaction: chunks, BM25 rows, `completed`. false when the claim was
    // lost meanwhile (cancelled, detached). `model` "" for a store without vectors. Throws
    // ModelMismatch when the store holds vectors of another model or size.
    bool complete(const Claim& c, const std::string& owner, const std::vector<StoredChunk>& chunks,
                  const std::string& model, int dims, long embedded);
    void fail(long attachment, const std::string& owner, const std::string& code, const std::string& message);
    // Gives a claim back untouched (this process stops): the next process resumes it.
    void release(long attachment, const std::string& owner);

    // Search's reads.
    long generation(long store_rowid);
    std::vector<Vector> vectors(long store_rowid, const std::string& model, long after_chunk);
    std::vector<long> chunk_ids(long store_rowid);
    bool has_chunks(long store_rowid);
    std::vector<AttachmentMeta> completed_attachments(long store_rowid);
    // BM25 ranking (best first) of the store's chunks for `query`, within `allowed` attachments when
    // given. Scores are positive, larger is better.
    std::vector<std::pair<long, double>> bm25(long store_rowid, const std::string& query, int limit,
                                              const std::optional<std::vector<long>>& allowed);
    std::vector<ChunkRow> chunks(const std::vector<long>& ids);
    void touch_store(long store_rowid);

private:
    sqlite::Db db_;
};

// "vs_" / "file-" / "vsfb_" followed by 32 hex digits of randomness.
std::string new_id(const std::string& prefix);
long now_seconds();
std::string sha256_hex(std::string_view bytes);

}  // namespace agente::rag
