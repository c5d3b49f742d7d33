// Files, vector stores, attachments and batches: the catalogue side of the Store.
#include "app/rag/store.hpp"

#include "app/rag/fts_stem.hpp"
#include "app/rag/schema.hpp"
#include "app/rag/settings.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <stdexcept>

namespace agente::rag {

using sqlite::Stmt;
using sqlite::Transaction;

namespace {

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
constexpr const char* store_cols =
    "rowid, id, name, language, embedding_model, dims, metadata, created_at, last_active_at, generation";
constexpr const char* attachment_cols =
    "a.rowid, s.id, a.file_id, a.batch_id, a.attributes, a.status, a.error_code, a.error_message, a.max_tokens, "
    "a.overlap_tokens, a.created_at, a.usage_bytes, a.chunks, a.embedded";

AttachmentRecord read_attachment(Stmt& s) {
    AttachmentRecord a;
    a.rowid = s.integer(0);
    a.store_id = s.text(1);
    a.file_id = s.text(2);
    a.batch_id = s.text(3);
    a.attributes = s.text(4);
    a.status = s.text(5);
    a.error_code = s.text(6);
    a.error_message = s.text(7);
    a.chunking = {int(s.integer(8)), int(s.integer(9))};
    a.created_at = s.integer(10);
    a.usage_bytes = s.integer(11);
    a.chunks = s.integer(12);
    a.embedded = s.integer(13);
    return a;
}

// The rowid of an object named by a list cursor, or 0 when unknown.
long cursor_rowid(sqlite::Db& db, const char* table, const std::string& id) {
    if (id.empty()) return 0;
    Stmt s(db, std::string("SELECT rowid FROM ") + table + " WHERE id = ?1");
    s.bind(1, id);
    return s.step() ? s.integer(0) : 0;
}

// " AND rowid < X ORDER BY rowid DESC LIMIT n+1" for OpenAI's after/before cursors and order.
std::string page_clause(const char* col, const ListQuery& q, long after, long before) {
    std::string w;
    if (after) w += std::string(" AND ") + col + (q.ascending ? " > " : " < ") + std::to_string(after);
    if (before) w += std::string(" AND ") + col + (q.ascending ? " < " : " > ") + std::to_string(before);
    w += std::string(" ORDER BY ") + col + (q.ascending ? " ASC" : " DESC");
    w += " LIMIT " + std::to_string(q.limit + 1);
    return w;
}

template <class T>
void trim_page(Page<T>& p, int limit) {
    if (int(p.items.size()) > limit) {
        p.items.resize(std::size_t(limit));
        p.has_more = true;
    }
}

// Deletes an attachment's chunks, their BM25 rows first (external content), and the embeddings no
// chunk uses any more.
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

Store::Store(const std::string& path, std::chrono::milliseconds busy_timeout) : db_(path, busy_timeout) {
    register_stem_tokenizer(db_.get());
    migrate(db_, rag_migrations());
}

int Store::schema_version() { return user_version(db_); }

FileRecord Store::add_file(const std::string& filename, const std::string& purpose, const std::string& content_type,
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

std::optional<FileRecord> Store::file(const std::string& id) {
    Stmt s(db_, std::string("SELECT ") + file_cols + " FROM files WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_file(s);
}

Page<FileRecord> Store::files(const ListQuery& q, const std::string& purpose) {
    long after = cursor_rowid(db_, "files", q.after), before = cursor_rowid(db_, "files", q.before);
    Stmt s(db_, std::string("SELECT ") + file_cols + " FROM files WHERE (?1 = '' OR purpose = ?1)" +
                    page_clause("rowid", q, after, before));
    s.bind(1, purpose);
    Page<FileRecord> p;
    while (s.step()) p.items.push_back(read_file(s));
    trim_page(p, q.limit);
    return p;
}

std::optional<std::string> Store::file_content(const std::string& id) {
    Stmt s(db_, "SELECT data FROM file_data WHERE file_id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return std::string(s.blob(0));
}

bool Store::delete_file(const std::string& id) {
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

StoreRecord Store::create_store(const std::string& name, const std::string& language, const std::string& metadata) {
    if (!known_language(language)) throw std::invalid_argument("unknown language \"" + language + "\"; known: " + known_languages());
    StoreRecord r;
    r.id = new_id("vs_");
    r.name = name;
    r.language = language;
    r.metadata = metadata.empty() ? "{}" : metadata;
    r.created_at = r.last_active_at = now_seconds();
    Transaction t(db_);
    Stmt s(db_, "INSERT INTO stores(id, name, language, metadata, created_at, last_active_at) VALUES(?1, ?2, ?3, ?4, ?5, ?5)");
    s.bind(1, r.id).bind(2, r.name).bind(3, r.language).bind(4, r.metadata).bind(5, r.created_at).step();
    r.rowid = long(db_.last_insert_rowid());
    // The language was checked against the stemmers' list above: it is a plain word.
    db_.exec("CREATE VIRTUAL TABLE " + fts_table(r.rowid) + " USING fts5(heading, text, content='chunks', "
             "content_rowid='id', tokenize='" + stem_tokenizer_name + " " + language + "')");
    t.commit();
    return r;
}

namespace {

void fill_counts(sqlite::Db& db, StoreRecord& r) {
    Stmt s(db, "SELECT status, COUNT(*), SUM(usage_bytes) FROM attachments WHERE store = ?1 GROUP BY status");
    s.bind(1, r.rowid);
    while (s.step()) {
        std::string st = s.text(0);
        long n = s.integer(1);
        r.counts.total += n;
        r.usage_bytes += s.integer(2);
        if (st == "in_progress") r.counts.in_progress = n;
        else if (st == "completed") r.counts.completed = n;
        else if (st == "failed") r.counts.failed = n;
        else if (st == "cancelled") r.counts.cancelled = n;
    }
}

StoreRecord read_store(sqlite::Db& db, Stmt& s) {
    StoreRecord r;
    r.rowid = s.integer(0);
    r.id = s.text(1);
    r.name = s.text(2);
    r.language = s.text(3);
    r.embedding_model = s.text(4);
    r.dims = int(s.integer(5));
    r.metadata = s.text(6);
    r.created_at = s.integer(7);
    r.last_active_at = s.integer(8);
    r.generation = s.integer(9);
    fill_counts(db, r);
    return r;
}

}  // namespace

std::optional<StoreRecord> Store::store(const std::string& id) {
    Stmt s(db_, std::string("SELECT ") + store_cols + " FROM stores WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_store(db_, s);
}

std::optional<StoreRecord> Store::store_named(const std::string& name) {
    Stmt s(db_, std::string("SELECT ") + store_cols + " FROM stores WHERE name = ?1 ORDER BY rowid DESC LIMIT 1");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return read_store(db_, s);
}

Page<StoreRecord> Store::stores(const ListQuery& q) {
    long after = cursor_rowid(db_, "stores", q.after), before = cursor_rowid(db_, "stores", q.before);
    Stmt s(db_, std::string("SELECT ") + store_cols + " FROM stores WHERE 1" + page_clause("rowid", q, after, before));
    Page<StoreRecord> p;
    while (s.step()) p.items.push_back(read_store(db_, s));
    trim_page(p, q.limit);
    return p;
}

bool Store::update_store(const std::string& id, const std::optional<std::string>& name,
                         const std::optional<std::string>& metadata) {
    Stmt s(db_, "UPDATE stores SET name = COALESCE(?2, name), metadata = COALESCE(?3, metadata) WHERE id = ?1");
    s.bind(1, id);
    if (name) s.bind(2, *name);
    if (metadata) s.bind(3, *metadata);
    s.step();
    return db_.changes() > 0;
}

bool Store::delete_store(const std::string& id) {
    Transaction t(db_);
    std::optional<StoreRecord> r;
    {
        Stmt s(db_, "SELECT rowid FROM stores WHERE id = ?1");
        s.bind(1, id);
        if (!s.step()) return false;
        r = StoreRecord{};
        r->rowid = s.integer(0);
    }
    remove_chunks(db_, r->rowid, "attachment IN (SELECT rowid FROM attachments WHERE store = ?1)", r->rowid);
    db_.exec("DROP TABLE IF EXISTS " + fts_table(r->rowid));
    Stmt d(db_, "DELETE FROM stores WHERE rowid = ?1");
    d.bind(1, r->rowid).step();
    t.commit();
    return true;
}

AttachmentRecord Store::attach(const std::string& store_id, const std::string& file_id, const std::string& attributes,
                               const ChunkingOptions& chunking, const std::string& batch_id) {
    Transaction t(db_);
    long store_rowid = 0;
    {
        Stmt s(db_, "SELECT rowid FROM stores WHERE id = ?1");
        s.bind(1, store_id);
        if (!s.step()) throw std::invalid_argument("no vector store " + store_id);
        store_rowid = s.integer(0);
    }
    {
        Stmt s(db_, "SELECT 1 FROM files WHERE id = ?1");
        s.bind(1, file_id);
        if (!s.step()) throw std::invalid_argument("no file " + file_id);
    }
    std::string attrs = attributes.empty() ? "{}" : attributes;
    Stmt s(db_, "INSERT INTO attachments(store, file_id, batch_id, attributes, status, max_tokens, overlap_tokens, created_at) "
                "VALUES(?1, ?2, ?3, ?4, 'in_progress', ?5, ?6, ?7) "
                "ON CONFLICT(store, file_id) DO UPDATE SET attributes = excluded.attributes, "
                "batch_id = CASE WHEN excluded.batch_id != '' THEN excluded.batch_id ELSE batch_id END, "
                "status = CASE WHEN status IN ('failed', 'cancelled') THEN 'in_progress' ELSE status END, "
                "attempts = CASE WHEN status IN ('failed', 'cancelled') THEN 0 ELSE attempts END, "
                "error_code = CASE WHEN status IN ('failed', 'cancelled') THEN '' ELSE error_code END, "
                "error_message = CASE WHEN status IN ('failed', 'cancelled') THEN '' ELSE error_message END");
    s.bind(1, store_rowid).bind(2, file_id).bind(3, batch_id).bind(4, attrs).bind(5, chunking.max_tokens);
    s.bind(6, chunking.overlap_tokens).bind(7, now_seconds()).step();
    bump_generation(db_, store_rowid);   // attributes are what filters see
    t.commit();
    return *attachment(store_id, file_id);
}

std::optional<AttachmentRecord> Store::attachment(const std::string& store_id, const std::string& file_id) {
    Stmt s(db_, std::string("SELECT ") + attachment_cols +
                    " FROM attachments a JOIN stores s ON s.rowid = a.store WHERE s.id = ?1 AND a.file_id = ?2");
    s.bind(1, store_id).bind(2, file_id);
    if (!s.step()) return std::nullopt;
    return read_attachment(s);
}

Page<AttachmentRecord> Store::attachments(const std::string& store_id, const ListQuery& q) {
    long after = 0, before = 0;
    auto rowid_of = [&](const std::string& file_id) -> long {
        if (file_id.empty()) return 0;
        Stmt s(db_, "SELECT a.rowid FROM attachments a JOIN stores s ON s.rowid = a.store WHERE s.id = ?1 AND a.file_id = ?2");
        s.bind(1, store_id).bind(2, file_id);
        return s.step() ? s.integer(0) : 0;
    };
    after = rowid_of(q.after);
    before = rowid_of(q.before);
    Stmt s(db_, std::string("SELECT ") + attachment_cols +
                    " FROM attachments a JOIN stores s ON s.rowid = a.store WHERE s.id = ?1 AND (?2 = '' OR a.status = ?2) "
                    "AND (?3 = '' OR a.batch_id = ?3)" + page_clause("a.rowid", q, after, before));
    s.bind(1, store_id).bind(2, q.status).bind(3, q.batch_id);
    Page<AttachmentRecord> p;
    while (s.step()) p.items.push_back(read_attachment(s));
    trim_page(p, q.limit);
    return p;
}

std::optional<std::pair<AttachmentRecord, FileRecord>> Store::attachment_by_filename(const std::string& store_id,
                                                                                    const std::string& filename) {
    std::string file_id;
    {
        Stmt s(db_, "SELECT a.file_id FROM attachments a JOIN stores s ON s.rowid = a.store JOIN files f ON f.id = a.file_id "
                    "WHERE s.id = ?1 AND f.filename = ?2 ORDER BY a.rowid DESC LIMIT 1");
        s.bind(1, store_id).bind(2, filename);
        if (!s.step()) return std::nullopt;
        file_id = s.text(0);
    }
    auto a = attachment(store_id, file_id);
    auto f = file(file_id);
    if (!a || !f) return std::nullopt;
    return std::make_pair(*a, *f);
}

bool Store::update_attributes(const std::string& store_id, const std::string& file_id, const std::string& attributes) {
    Transaction t(db_);
    Stmt s(db_, "UPDATE attachments SET attributes = ?3 WHERE file_id = ?2 AND store = (SELECT rowid FROM stores WHERE id = ?1)");
    s.bind(1, store_id).bind(2, file_id).bind(3, attributes).step();
    if (db_.changes() == 0) return false;
    Stmt g(db_, "UPDATE stores SET generation = generation + 1 WHERE id = ?1");
    g.bind(1, store_id).step();
    t.commit();
    return true;
}

bool Store::detach(const std::string& store_id, const std::string& file_id) {
    Transaction t(db_);
    long att = 0, store = 0;
    {
        Stmt s(db_, "SELECT a.rowid, a.store FROM attachments a JOIN stores s ON s.rowid = a.store WHERE s.id = ?1 AND a.file_id = ?2");
        s.bind(1, store_id).bind(2, file_id);
        if (!s.step()) return false;
        att = s.integer(0);
        store = s.integer(1);
    }
    remove_chunks(db_, store, "attachment = ?1", att);
    Stmt d(db_, "DELETE FROM attachments WHERE rowid = ?1");
    d.bind(1, att).step();
    bump_generation(db_, store);
    t.commit();
    return true;
}

std::string Store::create_batch(const std::string& store_id) {
    std::string id = new_id("vsfb_");
    Stmt s(db_, "INSERT INTO batches(id, store, created_at) SELECT ?1, rowid, ?3 FROM stores WHERE id = ?2");
    s.bind(1, id).bind(2, store_id).bind(3, now_seconds()).step();
    if (db_.changes() == 0) throw std::invalid_argument("no vector store " + store_id);
    return id;
}

bool Store::batch_exists(const std::string& store_id, const std::string& batch_id) {
    Stmt s(db_, "SELECT 1 FROM batches b JOIN stores s ON s.rowid = b.store WHERE s.id = ?1 AND b.id = ?2");
    s.bind(1, store_id).bind(2, batch_id);
    return s.step();
}

long Store::batch_created_at(const std::string& batch_id) {
    Stmt s(db_, "SELECT created_at FROM batches WHERE id = ?1");
    s.bind(1, batch_id);
    return s.step() ? s.integer(0) : 0;
}

FileCounts Store::batch_counts(const std::string& batch_id) {
    FileCounts c;
    Stmt s(db_, "SELECT status, COUNT(*) FROM attachments WHERE batch_id = ?1 GROUP BY status");
    s.bind(1, batch_id);
    while (s.step()) {
        std::string st = s.text(0);
        long n = s.integer(1);
        c.total += n;
        if (st == "in_progress") c.in_progress = n;
        else if (st == "completed") c.completed = n;
        else if (st == "failed") c.failed = n;
        else if (st == "cancelled") c.cancelled = n;
    }
    return c;
}

void Store::cancel_batch(const std::string& batch_id) {
    Stmt s(db_, "UPDATE attachments SET status = 'cancelled', owner = '' WHERE batch_id = ?1 AND status = 'in_progress'");
    s.bind(1, batch_id).step();
}

}  // namespace agente::rag
