// The search side of the Store: what the in-memory vector index is loaded from, and BM25 through the
// store's FTS5 table.
#include "app/rag/query_words.hpp"
#include "app/rag/sqlite_store.hpp"

#include <nlohmann/json.hpp>

#include <cstring>

namespace agente::rag {

using sqlite::Stmt;

namespace {

// The query's words, each quoted as an FTS5 string (so nothing in them is query syntax) and joined by
// OR: BM25 ranks documents by the words they share with the question, rarest words weighing most; an
// AND would find nothing as soon as one word of a natural question is absent.
std::string fts_query(const std::string& text) { return join_query_words(text, " OR ", "\""); }

}  // namespace

long SqliteStore::generation(long store_rowid) {
    Stmt s(db_, "SELECT generation FROM stores WHERE rowid = ?1");
    s.bind(1, store_rowid);
    return s.step() ? s.integer(0) : -1;
}

std::vector<Vector> SqliteStore::vectors(long store_rowid, const std::string& model, long after_chunk) {
    std::vector<Vector> out;
    Stmt s(db_, "SELECT c.id, c.attachment, e.vector FROM chunks c JOIN attachments a ON a.rowid = c.attachment "
                "JOIN embeddings e ON e.model = ?2 AND e.hash = c.hash WHERE a.store = ?1 AND c.id > ?3 ORDER BY c.id");
    s.bind(1, store_rowid).bind(2, model).bind(3, after_chunk);
    while (s.step()) {
        Vector v;
        v.chunk = s.integer(0);
        v.attachment = s.integer(1);
        std::string_view b = s.blob(2);
        v.values.resize(b.size() / sizeof(float));
        std::memcpy(v.values.data(), b.data(), v.values.size() * sizeof(float));
        out.push_back(std::move(v));
    }
    return out;
}

std::vector<long> SqliteStore::chunk_ids(long store_rowid) {
    std::vector<long> out;
    Stmt s(db_, "SELECT c.id FROM chunks c JOIN attachments a ON a.rowid = c.attachment WHERE a.store = ?1 ORDER BY c.id");
    s.bind(1, store_rowid);
    while (s.step()) out.push_back(s.integer(0));
    return out;
}

bool SqliteStore::has_chunks(long store_rowid) {
    Stmt s(db_, "SELECT EXISTS (SELECT 1 FROM attachments WHERE store = ?1 AND chunks > 0)");
    s.bind(1, store_rowid);
    s.step();
    return s.integer(0) != 0;
}

std::vector<AttachmentMeta> SqliteStore::completed_attachments(long store_rowid) {
    std::vector<AttachmentMeta> out;
    Stmt s(db_, "SELECT a.rowid, a.file_id, f.filename, a.attributes FROM attachments a JOIN files f ON f.id = a.file_id "
                "WHERE a.store = ?1 AND a.status = 'completed' ORDER BY a.rowid");
    s.bind(1, store_rowid);
    while (s.step()) out.push_back({s.integer(0), s.text(1), s.text(2), s.text(3)});
    return out;
}

std::vector<std::pair<long, double>> SqliteStore::bm25(long store_rowid, const std::string& query, int limit,
                                                 const std::optional<std::vector<long>>& allowed) {
    std::vector<std::pair<long, double>> out;
    std::string match = fts_query(query);
    if (match.empty() || (allowed && allowed->empty())) return out;
    std::string fts = "fts_" + std::to_string(store_rowid);
    // bm25() is negated (lower is better): its negation is the score.
    std::string sql = "SELECT f.rowid, -bm25(" + fts + ") FROM " + fts + " f";
    if (allowed) sql += " JOIN chunks c ON c.id = f.rowid";
    sql += " WHERE " + fts + " MATCH ?1";
    if (allowed) sql += " AND c.attachment IN (SELECT value FROM json_each(?3))";
    sql += " ORDER BY bm25(" + fts + ") LIMIT ?2";
    Stmt s(db_, sql);
    s.bind(1, match).bind(2, limit);
    if (allowed) s.bind(3, nlohmann::json(*allowed).dump());
    while (s.step()) out.emplace_back(s.integer(0), s.real(1));
    return out;
}

std::vector<ChunkRow> SqliteStore::chunks(const std::vector<long>& ids) {
    std::vector<ChunkRow> out;
    Stmt s(db_, "SELECT id, attachment, seq, heading, text, page FROM chunks WHERE id = ?1");
    for (long id : ids) {
        s.bind(1, id);
        if (s.step())
            out.push_back({s.integer(0), s.integer(1), int(s.integer(2)), s.text(3), s.text(4), int(s.integer(5))});
        s.reset();
    }
    return out;
}

void SqliteStore::touch_store(long store_rowid) {
    Stmt s(db_, "UPDATE stores SET last_active_at = ?2 WHERE rowid = ?1");
    s.bind(1, store_rowid).bind(2, now_seconds()).step();
}

}  // namespace agente::rag
