// The RAG state in SQLite (rag.sqlite3 in the state directory, WAL), the embedded default: uploaded
// files and their bytes, vector stores, the files attached to each (with attributes and OpenAI's
// ingest status), chunks, a BM25 index per store (FTS5, external content: the text lives once, in
// chunks), and embeddings cached by (model, content hash), so an unchanged chunk is never embedded
// twice.
//
// Crash safety: a file's chunks, their BM25 rows and its `completed` status are written in one
// transaction, so a process killed mid-ingest leaves the file `in_progress` with no chunks, never half
// of them; embeddings are committed batch by batch as they arrive, so the resumed ingest does not pay
// for them again. An attachment being ingested names its owner process (owner.hpp); claim_next()
// hands a file whose owner is gone to the next process that asks, and ends it `failed` once it has
// been interrupted max_attempts times (a file that crashes its parser every time).
#pragma once

#include "app/common/sqlite.hpp"
#include "app/rag/store.hpp"

#include <chrono>

namespace agente::rag {

class SqliteStore final : public Store {
public:
    // Opens (creating, migrating) the database; throws std::runtime_error naming the file.
    SqliteStore(const std::string& path, std::chrono::milliseconds busy_timeout);

    const std::string& path() const { return db_.path(); }
    int schema_version();
    sqlite::Db& db() { return db_; }

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
    std::vector<std::pair<long, double>> bm25(long store_rowid, const std::string& query, int limit,
                                              const std::optional<std::vector<long>>& allowed) override;
    std::vector<ChunkRow> chunks(const std::vector<long>& ids) override;
    void touch_store(long store_rowid) override;

private:
    sqlite::Db db_;
};

}  // namespace agente::rag
