// Vector stores, attachments and batches: the catalogue side of the Store (files: store_files.cpp).
#include "app/rag/store_internal.hpp"

#include "app/rag/fts_stem.hpp"
#include "app/rag/schema.hpp"
#include "app/rag/settings.hpp"

#include <stdexcept>

namespace agente::rag {

using namespace detail;
using sqlite::Transaction;

namespace {

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

}  // namespace

SqliteStore::SqliteStore(const std::string& path, std::chrono::milliseconds busy_timeout) : db_(path, busy_timeout) {
    register_stem_tokenizer(db_.get());
    migrate(db_, rag_migrations());
}

StoreRecord new_store_record(const std::string& name, const std::string& language, const std::string& metadata) {
    if (!known_language(language)) throw std::invalid_argument("unknown language \"" + language + "\"; known: " + known_languages());
    StoreRecord r;
    r.id = new_id("vs_");
    r.name = name;
    r.language = language;
    r.metadata = metadata.empty() ? "{}" : metadata;
    r.created_at = r.last_active_at = now_seconds();
    return r;
}

int SqliteStore::schema_version() { return user_version(db_); }

StoreRecord SqliteStore::create_store(const std::string& name, const std::string& language, const std::string& metadata) {
    StoreRecord r = new_store_record(name, language, metadata);
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
    Stmt s(db, "SELECT status, COUNT(*), SUM(usage_bytes), SUM(chunks) FROM attachments WHERE store = ?1 GROUP BY status");
    s.bind(1, r.rowid);
    while (s.step()) {
        std::string st = s.text(0);
        long n = s.integer(1);
        r.counts.total += n;
        r.usage_bytes += s.integer(2);
        r.chunks += s.integer(3);
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

std::optional<StoreRecord> SqliteStore::store(const std::string& id) {
    Stmt s(db_, std::string("SELECT ") + store_cols + " FROM stores WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_store(db_, s);
}

std::optional<StoreRecord> SqliteStore::store_named(const std::string& name) {
    Stmt s(db_, std::string("SELECT ") + store_cols + " FROM stores WHERE name = ?1 ORDER BY rowid DESC LIMIT 1");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return read_store(db_, s);
}

Page<StoreRecord> SqliteStore::stores(const ListQuery& q) {
    long after = cursor_rowid(db_, "stores", q.after), before = cursor_rowid(db_, "stores", q.before);
    Stmt s(db_, std::string("SELECT ") + store_cols + " FROM stores WHERE 1" + page_clause("rowid", q, after, before));
    Page<StoreRecord> p;
    while (s.step()) p.items.push_back(read_store(db_, s));
    trim_page(p, q.limit);
    return p;
}

bool SqliteStore::update_store(const std::string& id, const std::optional<std::string>& name,
                         const std::optional<std::string>& metadata) {
    Stmt s(db_, "UPDATE stores SET name = COALESCE(?2, name), metadata = COALESCE(?3, metadata) WHERE id = ?1");
    s.bind(1, id);
    if (name) s.bind(2, *name);
    if (metadata) s.bind(3, *metadata);
    s.step();
    return db_.changes() > 0;
}

bool SqliteStore::delete_store(const std::string& id) {
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

AttachmentRecord SqliteStore::attach(const std::string& store_id, const std::string& file_id, const std::string& attributes,
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

std::optional<AttachmentRecord> SqliteStore::attachment(const std::string& store_id, const std::string& file_id) {
    Stmt s(db_, std::string("SELECT ") + attachment_cols +
                    " FROM attachments a JOIN stores s ON s.rowid = a.store WHERE s.id = ?1 AND a.file_id = ?2");
    s.bind(1, store_id).bind(2, file_id);
    if (!s.step()) return std::nullopt;
    return read_attachment(s);
}

Page<AttachmentRecord> SqliteStore::attachments(const std::string& store_id, const ListQuery& q) {
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

std::optional<std::pair<AttachmentRecord, FileRecord>> SqliteStore::attachment_by_filename(const std::string& store_id,
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

bool SqliteStore::update_attributes(const std::string& store_id, const std::string& file_id, const std::string& attributes) {
    Transaction t(db_);
    Stmt s(db_, "UPDATE attachments SET attributes = ?3 WHERE file_id = ?2 AND store = (SELECT rowid FROM stores WHERE id = ?1)");
    s.bind(1, store_id).bind(2, file_id).bind(3, attributes).step();
    if (db_.changes() == 0) return false;
    Stmt g(db_, "UPDATE stores SET generation = generation + 1 WHERE id = ?1");
    g.bind(1, store_id).step();
    t.commit();
    return true;
}

bool SqliteStore::detach(const std::string& store_id, const std::string& file_id) {
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

std::string SqliteStore::create_batch(const std::string& store_id) {
    std::string id = new_id("vsfb_");
    Stmt s(db_, "INSERT INTO batches(id, store, created_at) SELECT ?1, rowid, ?3 FROM stores WHERE id = ?2");
    s.bind(1, id).bind(2, store_id).bind(3, now_seconds()).step();
    if (db_.changes() == 0) throw std::invalid_argument("no vector store " + store_id);
    return id;
}

bool SqliteStore::batch_exists(const std::string& store_id, const std::string& batch_id) {
    Stmt s(db_, "SELECT 1 FROM batches b JOIN stores s ON s.rowid = b.store WHERE s.id = ?1 AND b.id = ?2");
    s.bind(1, store_id).bind(2, batch_id);
    return s.step();
}

long SqliteStore::batch_created_at(const std::string& batch_id) {
    Stmt s(db_, "SELECT created_at FROM batches WHERE id = ?1");
    s.bind(1, batch_id);
    return s.step() ? s.integer(0) : 0;
}

FileCounts SqliteStore::batch_counts(const std::string& batch_id) {
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

void SqliteStore::cancel_batch(const std::string& batch_id) {
    Stmt s(db_, "UPDATE attachments SET status = 'cancelled', owner = '' WHERE batch_id = ?1 AND status = 'in_progress'");
    s.bind(1, batch_id).step();
}

}  // namespace agente::rag
