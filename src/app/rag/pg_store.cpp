// The PostgreSQL store's connection and catalogue: files, vector stores, attachments and batches
// (ingest and search: pg_store_ingest.cpp). SQLite's statements (store_catalog.cpp, store_files.cpp)
// in PostgreSQL's dialect.
#include "app/rag/pg_store.hpp"

#include "app/cluster/migrations.hpp"
#include "app/rag/settings.hpp"
#include "app/rag/store_internal.hpp"

#include <unistd.h>

#include <stdexcept>

namespace agente::rag {

namespace {

std::string str(long v) { return std::to_string(v); }

std::string this_host() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "unknown";
    return name;
}

constexpr const char* file_cols = "id, filename, purpose, content_type, bytes, created_at, sha256";
constexpr const char* store_cols =
    "rowid, id, name, language, embedding_model, dims, metadata, created_at, last_active_at, generation";
constexpr const char* attachment_cols =
    "a.rowid, s.id, a.file_id, a.batch_id, a.attributes, a.status, a.error_code, a.error_message, a.max_tokens, "
    "a.overlap_tokens, a.created_at, a.usage_bytes, a.chunks, a.embedded";

FileRecord read_file(const pg::Result& r, int i) {
    return {r.text(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3), r.integer(i, 4), r.integer(i, 5), r.text(i, 6)};
}

AttachmentRecord read_attachment(const pg::Result& r, int i) {
    AttachmentRecord a;
    a.rowid = r.integer(i, 0);
    a.store_id = r.text(i, 1);
    a.file_id = r.text(i, 2);
    a.batch_id = r.text(i, 3);
    a.attributes = r.text(i, 4);
    a.status = r.text(i, 5);
    a.error_code = r.text(i, 6);
    a.error_message = r.text(i, 7);
    a.chunking = {int(r.integer(i, 8)), int(r.integer(i, 9))};
    a.created_at = r.integer(i, 10);
    a.usage_bytes = r.integer(i, 11);
    a.chunks = r.integer(i, 12);
    a.embedded = r.integer(i, 13);
    return a;
}

void count(FileCounts& c, const std::string& status, long n) {
    c.total += n;
    if (status == "in_progress") c.in_progress = n;
    else if (status == "completed") c.completed = n;
    else if (status == "failed") c.failed = n;
    else if (status == "cancelled") c.cancelled = n;
}

// The cursor's position (`column` of the row whose id is `id`), 0 when unknown.
long cursor(pg::Connection& c, const char* table, const char* column, const std::string& id) {
    if (id.empty()) return 0;
    pg::Result r = c.exec(std::string("SELECT ") + column + " FROM " + table + " WHERE id = $1", {id});
    return r.rows() ? r.integer(0, 0) : 0;
}

}  // namespace

PgStore::PgStore(const std::string& url, const pg::Options& options) : c_(url, options), host_(this_host()) {
    cluster::check_schema(c_);
    pgvector_ = c_.exec("SELECT 1 FROM pg_attribute WHERE attrelid = 'rag_embeddings'::regclass "
                        "AND attname = 'embedding' AND NOT attisdropped").rows() > 0;
}

FileRecord PgStore::add_file(const std::string& filename, const std::string& purpose, const std::string& content_type,
                             std::string_view bytes) {
    FileRecord f{new_id("file-"), filename, purpose, content_type, long(bytes.size()), now_seconds(), sha256_hex(bytes)};
    std::string data = bytea_text(bytes);
    pg::in_transaction(c_, [&] {
        c_.exec("INSERT INTO rag_files(id, filename, purpose, content_type, bytes, sha256, created_at) "
                "VALUES($1, $2, $3, $4, $5, $6, $7)",
                {f.id, f.filename, f.purpose, f.content_type, str(f.bytes), f.sha256, str(f.created_at)});
        c_.exec("INSERT INTO rag_file_data(file_id, data) VALUES($1, $2::bytea)", {f.id, data});
    });
    return f;
}

std::optional<FileRecord> PgStore::file(const std::string& id) {
    return pg::in_transaction(c_, [&]() -> std::optional<FileRecord> {
        pg::Result r = c_.exec(std::string("SELECT ") + file_cols + " FROM rag_files WHERE id = $1", {id});
        if (!r.rows()) return std::nullopt;
        return read_file(r, 0);
    });
}

Page<FileRecord> PgStore::files(const ListQuery& q, const std::string& purpose) {
    return pg::in_transaction(c_, [&] {
        long after = cursor(c_, "rag_files", "seq", q.after), before = cursor(c_, "rag_files", "seq", q.before);
        pg::Result r = c_.exec(std::string("SELECT ") + file_cols + " FROM rag_files WHERE ($1 = '' OR purpose = $1)" +
                                   detail::page_clause("seq", q, after, before),
                               {purpose});
        Page<FileRecord> p;
        for (int i = 0; i < r.rows(); ++i) p.items.push_back(read_file(r, i));
        detail::trim_page(p, q.limit);
        return p;
    });
}

std::optional<std::string> PgStore::file_content(const std::string& id) {
    return pg::in_transaction(c_, [&]() -> std::optional<std::string> {
        pg::Result r = c_.exec("SELECT data FROM rag_file_data WHERE file_id = $1", {id});
        if (!r.rows()) return std::nullopt;
        return from_bytea_text(r.text(0, 0));
    });
}

// Within the caller's transaction: the attachment, its chunks (by cascade), and the cached vectors
// no other chunk uses (deleted first: the check needs the chunks still there).
void PgStore::remove_attachment(long attachment, long store) {
    std::string a = str(attachment);
    c_.exec("DELETE FROM rag_embeddings e WHERE e.hash IN (SELECT hash FROM rag_chunks WHERE attachment = $1) "
            "AND NOT EXISTS (SELECT 1 FROM rag_chunks c WHERE c.hash = e.hash AND c.attachment <> $1)",
            {a});
    c_.exec("DELETE FROM rag_attachments WHERE rowid = $1", {a});
    c_.exec("UPDATE rag_stores SET generation = generation + 1 WHERE rowid = $1", {str(store)});
}

bool PgStore::delete_file(const std::string& id) {
    return pg::in_transaction(c_, [&] {
        pg::Result atts = c_.exec("SELECT rowid, store FROM rag_attachments WHERE file_id = $1 FOR UPDATE", {id});
        for (int i = 0; i < atts.rows(); ++i) remove_attachment(atts.integer(i, 0), atts.integer(i, 1));
        return c_.exec("DELETE FROM rag_files WHERE id = $1", {id}).affected() > 0;
    });
}

StoreRecord PgStore::read_store(const pg::Result& r, int i) {
    StoreRecord s;
    s.rowid = r.integer(i, 0);
    s.id = r.text(i, 1);
    s.name = r.text(i, 2);
    s.language = r.text(i, 3);
    s.embedding_model = r.text(i, 4);
    s.dims = int(r.integer(i, 5));
    s.metadata = r.text(i, 6);
    s.created_at = r.integer(i, 7);
    s.last_active_at = r.integer(i, 8);
    s.generation = r.integer(i, 9);
    pg::Result n = c_.exec("SELECT status, COUNT(*), COALESCE(SUM(usage_bytes), 0), COALESCE(SUM(chunks), 0) "
                           "FROM rag_attachments WHERE store = $1 GROUP BY status",
                           {str(s.rowid)});
    for (int k = 0; k < n.rows(); ++k) {
        count(s.counts, n.text(k, 0), n.integer(k, 1));
        s.usage_bytes += n.integer(k, 2);
        s.chunks += n.integer(k, 3);
    }
    return s;
}

StoreRecord PgStore::create_store(const std::string& name, const std::string& language, const std::string& metadata) {
    StoreRecord r = new_store_record(name, language, metadata);
    r.rowid = pg::in_transaction(c_, [&] {
        // The configuration named as the stemmer's language when PostgreSQL has one (english,
        // portuguese, ...: both name Snowball's), else `simple` (words as written, case folded).
        pg::Result id = c_.exec(
            "INSERT INTO rag_stores(id, name, language, ts_config, metadata, created_at, last_active_at) "
            "VALUES($1, $2, $3::text, COALESCE((SELECT oid FROM pg_ts_config WHERE cfgname = $3::text::name), 'simple'::regconfig), "
            "$4, $5, $5) RETURNING rowid",
            {r.id, r.name, r.language, r.metadata, str(r.created_at)});
        return id.integer(0, 0);
    });
    return r;
}

std::optional<StoreRecord> PgStore::store(const std::string& id) {
    return pg::in_transaction(c_, [&]() -> std::optional<StoreRecord> {
        pg::Result r = c_.exec(std::string("SELECT ") + store_cols + " FROM rag_stores WHERE id = $1", {id});
        if (!r.rows()) return std::nullopt;
        return read_store(r, 0);
    });
}

std::optional<StoreRecord> PgStore::store_named(const std::string& name) {
    return pg::in_transaction(c_, [&]() -> std::optional<StoreRecord> {
        pg::Result r = c_.exec(std::string("SELECT ") + store_cols +
                                   " FROM rag_stores WHERE name = $1 ORDER BY rowid DESC LIMIT 1",
                               {name});
        if (!r.rows()) return std::nullopt;
        return read_store(r, 0);
    });
}

Page<StoreRecord> PgStore::stores(const ListQuery& q) {
    return pg::in_transaction(c_, [&] {
        long after = cursor(c_, "rag_stores", "rowid", q.after), before = cursor(c_, "rag_stores", "rowid", q.before);
        pg::Result r = c_.exec(std::string("SELECT ") + store_cols + " FROM rag_stores WHERE true" +
                               detail::page_clause("rowid", q, after, before));
        Page<StoreRecord> p;
        for (int i = 0; i < r.rows(); ++i) p.items.push_back(read_store(r, i));
        detail::trim_page(p, q.limit);
        return p;
    });
}

bool PgStore::update_store(const std::string& id, const std::optional<std::string>& name,
                           const std::optional<std::string>& metadata) {
    return pg::in_transaction(c_, [&] {
        return c_.exec("UPDATE rag_stores SET name = COALESCE($2, name), metadata = COALESCE($3, metadata) WHERE id = $1",
                       {id, name, metadata})
                   .affected() > 0;
    });
}

bool PgStore::delete_store(const std::string& id) {
    return pg::in_transaction(c_, [&] {
        pg::Result s = c_.exec("SELECT rowid FROM rag_stores WHERE id = $1 FOR UPDATE", {id});
        if (!s.rows()) return false;
        std::string rowid = s.text(0, 0);
        c_.exec("DELETE FROM rag_embeddings e WHERE e.hash IN (SELECT hash FROM rag_chunks WHERE store = $1) "
                "AND NOT EXISTS (SELECT 1 FROM rag_chunks c WHERE c.hash = e.hash AND c.store <> $1)",
                {rowid});
        c_.exec("DELETE FROM rag_stores WHERE rowid = $1", {rowid});   // attachments, chunks, batches by cascade
        return true;
    });
}

AttachmentRecord PgStore::attach(const std::string& store_id, const std::string& file_id, const std::string& attributes,
                                 const ChunkingOptions& chunking, const std::string& batch_id) {
    pg::in_transaction(c_, [&] {
        pg::Result s = c_.exec("SELECT rowid FROM rag_stores WHERE id = $1", {store_id});
        if (!s.rows()) throw std::invalid_argument("no vector store " + store_id);
        if (!c_.exec("SELECT 1 FROM rag_files WHERE id = $1", {file_id}).rows())
            throw std::invalid_argument("no file " + file_id);
        std::string store = s.text(0, 0);
        std::string attrs = attributes.empty() ? "{}" : attributes;
        c_.exec("INSERT INTO rag_attachments AS a(store, file_id, batch_id, attributes, status, max_tokens, "
                "overlap_tokens, created_at) VALUES($1, $2, $3, $4, 'in_progress', $5, $6, $7) "
                "ON CONFLICT(store, file_id) DO UPDATE SET attributes = excluded.attributes, "
                "batch_id = CASE WHEN excluded.batch_id <> '' THEN excluded.batch_id ELSE a.batch_id END, "
                "status = CASE WHEN a.status IN ('failed', 'cancelled') THEN 'in_progress' ELSE a.status END, "
                "attempts = CASE WHEN a.status IN ('failed', 'cancelled') THEN 0 ELSE a.attempts END, "
                "error_code = CASE WHEN a.status IN ('failed', 'cancelled') THEN '' ELSE a.error_code END, "
                "error_message = CASE WHEN a.status IN ('failed', 'cancelled') THEN '' ELSE a.error_message END",
                {store, file_id, batch_id, attrs, str(chunking.max_tokens), str(chunking.overlap_tokens),
                 str(now_seconds())});
        c_.exec("UPDATE rag_stores SET generation = generation + 1 WHERE rowid = $1", {store});   // filters see attributes
    });
    return *attachment(store_id, file_id);
}

std::optional<AttachmentRecord> PgStore::attachment(const std::string& store_id, const std::string& file_id) {
    return pg::in_transaction(c_, [&]() -> std::optional<AttachmentRecord> {
        pg::Result r = c_.exec(std::string("SELECT ") + attachment_cols +
                                   " FROM rag_attachments a JOIN rag_stores s ON s.rowid = a.store "
                                   "WHERE s.id = $1 AND a.file_id = $2",
                               {store_id, file_id});
        if (!r.rows()) return std::nullopt;
        return read_attachment(r, 0);
    });
}

Page<AttachmentRecord> PgStore::attachments(const std::string& store_id, const ListQuery& q) {
    return pg::in_transaction(c_, [&] {
        auto rowid_of = [&](const std::string& file_id) -> long {
            if (file_id.empty()) return 0;
            pg::Result r = c_.exec("SELECT a.rowid FROM rag_attachments a JOIN rag_stores s ON s.rowid = a.store "
                                   "WHERE s.id = $1 AND a.file_id = $2",
                                   {store_id, file_id});
            return r.rows() ? r.integer(0, 0) : 0;
        };
        long after = rowid_of(q.after), before = rowid_of(q.before);
        pg::Result r = c_.exec(std::string("SELECT ") + attachment_cols +
                                   " FROM rag_attachments a JOIN rag_stores s ON s.rowid = a.store WHERE s.id = $1 "
                                   "AND ($2 = '' OR a.status = $2) AND ($3 = '' OR a.batch_id = $3)" +
                                   detail::page_clause("a.rowid", q, after, before),
                               {store_id, q.status, q.batch_id});
        Page<AttachmentRecord> p;
        for (int i = 0; i < r.rows(); ++i) p.items.push_back(read_attachment(r, i));
        detail::trim_page(p, q.limit);
        return p;
    });
}

std::optional<std::pair<AttachmentRecord, FileRecord>> PgStore::attachment_by_filename(const std::string& store_id,
                                                                                      const std::string& filename) {
    std::string file_id = pg::in_transaction(c_, [&] {
        pg::Result r = c_.exec("SELECT a.file_id FROM rag_attachments a JOIN rag_stores s ON s.rowid = a.store "
                               "JOIN rag_files f ON f.id = a.file_id WHERE s.id = $1 AND f.filename = $2 "
                               "ORDER BY a.rowid DESC LIMIT 1",
                               {store_id, filename});
        return r.rows() ? r.text(0, 0) : std::string();
    });
    if (file_id.empty()) return std::nullopt;
    auto a = attachment(store_id, file_id);
    auto f = file(file_id);
    if (!a || !f) return std::nullopt;
    return std::make_pair(*a, *f);
}

bool PgStore::update_attributes(const std::string& store_id, const std::string& file_id, const std::string& attributes) {
    return pg::in_transaction(c_, [&] {
        pg::Result r = c_.exec("UPDATE rag_attachments SET attributes = $3 WHERE file_id = $2 "
                               "AND store = (SELECT rowid FROM rag_stores WHERE id = $1)",
                               {store_id, file_id, attributes});
        if (r.affected() == 0) return false;
        c_.exec("UPDATE rag_stores SET generation = generation + 1 WHERE id = $1", {store_id});
        return true;
    });
}

bool PgStore::detach(const std::string& store_id, const std::string& file_id) {
    return pg::in_transaction(c_, [&] {
        pg::Result r = c_.exec("SELECT a.rowid, a.store FROM rag_attachments a JOIN rag_stores s ON s.rowid = a.store "
                               "WHERE s.id = $1 AND a.file_id = $2 FOR UPDATE OF a",
                               {store_id, file_id});
        if (!r.rows()) return false;
        remove_attachment(r.integer(0, 0), r.integer(0, 1));
        return true;
    });
}

std::string PgStore::create_batch(const std::string& store_id) {
    std::string id = new_id("vsfb_");
    pg::in_transaction(c_, [&] {
        pg::Result r = c_.exec("INSERT INTO rag_batches(id, store, created_at) SELECT $1, rowid, $3 FROM rag_stores "
                               "WHERE id = $2",
                               {id, store_id, str(now_seconds())});
        if (r.affected() == 0) throw std::invalid_argument("no vector store " + store_id);
    });
    return id;
}

bool PgStore::batch_exists(const std::string& store_id, const std::string& batch_id) {
    return pg::in_transaction(c_, [&] {
        return c_.exec("SELECT 1 FROM rag_batches b JOIN rag_stores s ON s.rowid = b.store WHERE s.id = $1 AND b.id = $2",
                       {store_id, batch_id})
                   .rows() > 0;
    });
}

long PgStore::batch_created_at(const std::string& batch_id) {
    return pg::in_transaction(c_, [&] {
        pg::Result r = c_.exec("SELECT created_at FROM rag_batches WHERE id = $1", {batch_id});
        return r.rows() ? r.integer(0, 0) : 0L;
    });
}

FileCounts PgStore::batch_counts(const std::string& batch_id) {
    return pg::in_transaction(c_, [&] {
        FileCounts c;
        pg::Result r = c_.exec("SELECT status, COUNT(*) FROM rag_attachments WHERE batch_id = $1 GROUP BY status", {batch_id});
        for (int i = 0; i < r.rows(); ++i) count(c, r.text(i, 0), r.integer(i, 1));
        return c;
    });
}

void PgStore::cancel_batch(const std::string& batch_id) {
    pg::in_transaction(c_, [&] {
        c_.exec("UPDATE rag_attachments SET status = 'cancelled', owner = '' WHERE batch_id = $1 AND status = 'in_progress'",
                {batch_id});
    });
}

std::unique_ptr<Store> open_pg_store(const cluster::ClusterSettings& settings) {
    if (!settings.error.empty()) throw pg::Error(settings.error, false);
    pg::Options options;
    options.connect_timeout = settings.postgres_connect_timeout;
    options.statement_timeout = settings.postgres_statement_timeout;
    options.application_name = "agente-hibrido rag";
    return std::make_unique<PgStore>(settings.postgres_url, options);
}

}  // namespace agente::rag
