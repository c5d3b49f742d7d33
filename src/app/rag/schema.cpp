#include "app/rag/schema.hpp"

#include <stdexcept>
#include <string>

namespace agente::rag {

namespace {

// Version 1. Chunks are never deleted by a cascade alone: their rows in the store's FTS table
// (fts_<store rowid>, external content) must go first, which store_*.cpp do in code.
constexpr const char* v1 = R"sql(
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE file_data (
    file_id TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    data BLOB NOT NULL
);
CREATE TABLE stores (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    embedding_model TEXT NOT NULL DEFAULT '',
    dims INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    last_active_at INTEGER NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX stores_by_name ON stores(name);
CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    store INTEGER NOT NULL REFERENCES stores(rowid) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE TABLE attachments (
    rowid INTEGER PRIMARY KEY,
    store INTEGER NOT NULL REFERENCES stores(rowid) ON DELETE CASCADE,
    file_id TEXT NOT NULL REFERENCES files(id),
    batch_id TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    error_code TEXT NOT NULL DEFAULT '',
    error_message TEXT NOT NULL DEFAULT '',
    max_tokens INTEGER NOT NULL,
    overlap_tokens INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    usage_bytes INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    embedded INTEGER NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (store, file_id)
);
CREATE INDEX attachments_in_progress ON attachments(rowid) WHERE status = 'in_progress';
CREATE INDEX attachments_by_batch ON attachments(batch_id) WHERE batch_id != '';
CREATE INDEX attachments_by_file ON attachments(file_id);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    attachment INTEGER NOT NULL REFERENCES attachments(rowid) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    page INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX chunks_by_attachment ON chunks(attachment, seq);
CREATE INDEX chunks_by_hash ON chunks(hash);
CREATE TABLE embeddings (
    model TEXT NOT NULL,
    hash BLOB NOT NULL,
    dims INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, hash)
) WITHOUT ROWID;
)sql";

constexpr Migration migrations[] = {{1, v1}};

}  // namespace

std::span<const Migration> rag_migrations() { return migrations; }

int user_version(sqlite::Db& db) {
    sqlite::Stmt s(db, "PRAGMA user_version");
    s.step();
    return int(s.integer(0));
}

void migrate(sqlite::Db& db, std::span<const Migration> ms) {
    int known = ms.empty() ? 0 : ms.back().version;
    for (const Migration& m : ms) {
        sqlite::Transaction t(db);
        int v = user_version(db);   // read under the write lock: another process may have migrated
        if (v > known)
            throw std::runtime_error(db.path() + " has schema version " + std::to_string(v) + ", newer than this " +
                                     "binary knows (" + std::to_string(known) + "): run a newer agente-hibrido");
        if (v >= m.version) continue;
        db.exec(m.sql);
        db.exec("PRAGMA user_version = " + std::to_string(m.version));
        t.commit();
    }
    if (ms.empty() && user_version(db) > 0)
        throw std::runtime_error(db.path() + " has a schema this binary does not know");
}

}  // namespace agente::rag
