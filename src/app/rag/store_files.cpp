// The Store's shared pieces (store_internal.hpp), its files, and its ids.
#include "app/rag/store_internal.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <stdexcept>

namespace agente::rag {

namespace detail {

std::string hex(const unsigned char* p, std::size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(digits[p[i] >> 4]);
        out.push_back(digits[p[i] & 15]);
    }
    return out;
}

std::string fts_table(long store_rowid) { return "fts_" + std::to_string(store_rowid); }

long cursor_rowid(sqlite::Db& db, const char* table, const std::string& id) {
    if (id.empty()) return 0;
    Stmt s(db, std::string("SELECT rowid FROM ") + table + " WHERE id = ?1");
    s.bind(1, id);
    return s.step() ? s.integer(0) : 0;
}

std::string page_clause(const char* col, const ListQuery& q, long after, long before) {
    std::string w;
    if (after) w += std::string(" AND ") + col + (q.ascending ? " > " : " < ") + std::to_string(after);
    if (before) w += std::string(" AND ") + col + (q.ascending ? " < " : " > ") + std::to_string(before);
    w += std::string(" ORDER BY ") + col + (q.ascending ? " ASC" : " DESC");
    w += " LIMIT " + std::to_string(q.limit + 1);
    return w;
}

void remove_chunks(sqlite::Db& db, long store_rowid, const std::string& where_attachment, long value) {
    std::string fts = fts_table(store_rowid);
    db.exec("CREATE TEMP TABLE IF NOT EXISTS removed_hashes(hash BLOB PRIMARY KEY) WITHOUT ROWID");
    db.exec("DELETE FROM removed_hashes");
    Stmt h(db, "INSERT OR IGNORE INTO removed_hashes SELECT hash FROM chunks WHERE " + where_attachment);
    h.bind(1, value).step();
    Stmt f(db, "INSERT INTO " + fts + "(" + fts + ", rowid, heading, text) SELECT 'delete', id, heading, text "
               "FROM chunks WHERE " + where_attachment);
    f.bind(1, value).step();
    Stmt d(db, "DELETE FROM chunks WHERE " + where_attachment);
    d.bind(1, value).step();
    db.exec("DELETE FROM embeddings WHERE hash IN (SELECT hash FROM removed_hashes) "
            "AND NOT EXISTS (SELECT 1 FROM chunks WHERE chunks.hash = embeddings.hash)");
}

void bump_generation(sqlite::Db& db, long store_rowid) {
    Stmt s(db, "UPDATE stores SET generation = generation + 1 WHERE rowid = ?1");
    s.bind(1, store_rowid).step();
}

}  // namespace detail

using namespace detail;
using sqlite::Transaction;

namespace {

FileRecord read_file(Stmt& s) {
    FileRecord f;
    f.id = s.text(0);
    f.filename = s.text(1);
    f.purpose = s.text(2);
    f.content_type = s.text(3);
    f.bytes = s.integer(4);
    f.created_at = s.integer(5);
    f.sha256 = s.text(6);
    return f;
}

constexpr const char* file_cols = "id, filename, purpose, content_type, bytes, created_at, sha256";

}  // namespace

std::string sha256_hex(std::string_view bytes) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr);
    return hex(md, n);
}

std::string new_id(const std::string& prefix) {
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1) throw std::runtime_error("no randomness for an id");
    return prefix + hex(r, sizeof r);
}

long now_seconds() {
    return long(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

FileRecord SqliteStore::add_file(const std::string& filename, const std::string& purpose, const std::string& content_type,
                           std::string_view bytes) {
    FileRecord f{new_id("file-"), filename, purpose, content_type, long(bytes.size()), now_seconds(), sha256_hex(bytes)};
    Transaction t(db_);
    Stmt s(db_, "INSERT INTO files(id, filename, purpose, content_type, bytes, sha256, created_at) "
                "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    s.bind(1, f.id).bind(2, f.filename).bind(3, f.purpose).bind(4, f.content_type).bind(5, f.bytes);
    s.bind(6, f.sha256).bind(7, f.created_at).step();
    Stmt d(db_, "INSERT INTO file_data(file_id, data) VALUES(?1, ?2)");
    d.bind(1, f.id).bind_blob(2, bytes.data(), bytes.size()).step();
    t.commit();
    return f;
}

std::optional<FileRecord> SqliteStore::file(const std::string& id) {
    Stmt s(db_, std::string("SELECT ") + file_cols + " FROM files WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_file(s);
}

Page<FileRecord> SqliteStore::files(const ListQuery& q, const std::string& purpose) {
    long after = cursor_rowid(db_, "files", q.after), before = cursor_rowid(db_, "files", q.before);
    Stmt s(db_, std::string("SELECT ") + file_cols + " FROM files WHERE (?1 = '' OR purpose = ?1)" +
                    page_clause("rowid", q, after, before));
    s.bind(1, purpose);
    Page<FileRecord> p;
    while (s.step()) p.items.push_back(read_file(s));
    trim_page(p, q.limit);
    return p;
}

std::optional<std::string> SqliteStore::file_content(const std::string& id) {
    Stmt s(db_, "SELECT data FROM file_data WHERE file_id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return std::string(s.blob(0));
}

bool SqliteStore::delete_file(const std::string& id) {
    Transaction t(db_);
    std::vector<std::pair<long, long>> atts;   // (attachment, store)
    {
        Stmt s(db_, "SELECT rowid, store FROM attachments WHERE file_id = ?1");
        s.bind(1, id);
        while (s.step()) atts.emplace_back(s.integer(0), s.integer(1));
    }
    for (auto [att, store] : atts) {
        remove_chunks(db_, store, "attachment = ?1", att);
        Stmt d(db_, "DELETE FROM attachments WHERE rowid = ?1");
        d.bind(1, att).step();
        bump_generation(db_, store);
    }
    Stmt d(db_, "DELETE FROM files WHERE id = ?1");
    d.bind(1, id).step();
    bool found = db_.changes() > 0;
    t.commit();
    return found;
}

}  // namespace agente::rag
