// What the Store's files share: table names, list pages, and the removal of chunks with their BM25
// rows. Internal to src/app/rag/store_*.cpp.
#pragma once

#include "app/rag/sqlite_store.hpp"

namespace agente::rag::detail {

using sqlite::Stmt;

std::string hex(const unsigned char* p, std::size_t n);
std::string fts_table(long store_rowid);
// The rowid of an object named by a list cursor, or 0 when unknown.
long cursor_rowid(sqlite::Db& db, const char* table, const std::string& id);
// " AND rowid < X ORDER BY rowid DESC LIMIT n+1" for OpenAI's after/before cursors and order.
std::string page_clause(const char* col, const ListQuery& q, long after, long before);
template <class T>
void trim_page(Page<T>& p, int limit) {
    if (int(p.items.size()) > limit) {
        p.items.resize(std::size_t(limit));
        p.has_more = true;
    }
}
// Deletes an attachment's chunks, their BM25 rows first (external content), and the embeddings no
// chunk uses any more.
void remove_chunks(sqlite::Db& db, long store_rowid, const std::string& where_attachment, long value);
void bump_generation(sqlite::Db& db, long store_rowid);

}  // namespace agente::rag::detail
