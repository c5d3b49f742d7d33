// The PostgreSQL store's ingest (claims across machines, the embedding cache, the transaction that
// completes a file) and search's reads (vectors for the pool's index, ts_rank full text).
#include "app/rag/owner.hpp"
#include "app/rag/pg_store.hpp"
#include "app/rag/query_words.hpp"
#include "app/rag/store_internal.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace agente::rag {

namespace {

std::string str(long v) { return std::to_string(v); }

std::string bytes_of(const std::vector<float>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

std::vector<float> floats_of(const std::string& bytes) {
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
    return v;
}

// PostgreSQL's array literal of integers ("{1,2,3}").
std::string int_array(const std::vector<long>& ids) {
    std::string out = "{";
    for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
    return out + "}";
}

// Vectors read per statement when an index is loaded: a few MB of text each.
constexpr long vector_page_rows = 2000;

// pgvector's bound on hnsw.ef_search.
constexpr int max_ef_search = 1000;

constexpr const char* claim_cols =
    "a.rowid, a.store, s.id, a.file_id, a.max_tokens, a.overlap_tokens, a.attempts, a.owner, a.owner_host, a.heartbeat";

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::runtime_error("PostgreSQL sent a bytea that is not hex");
}

}  // namespace

std::string bytea_text(std::string_view bytes) {
    return "\\x" + detail::hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

std::string from_bytea_text(std::string_view text) {
    // bytea_output = hex, PostgreSQL's default since 9.0.
    if (!text.starts_with("\\x")) throw std::runtime_error("PostgreSQL sent a bytea not in hex (bytea_output)");
    std::string out;
    out.reserve((text.size() - 2) / 2);
    for (std::size_t i = 2; i + 1 < text.size(); i += 2)
        out.push_back(char(hex_digit(text[i]) * 16 + hex_digit(text[i + 1])));
    return out;
}

bool PgStore::claim_alive(const std::string& owner, const std::string& host, long heartbeat, const std::string& me) {
    if (owner.empty()) return false;
    if (host == host_) return owner == me || owner_alive(owner);
    return now_seconds() - heartbeat < long(claim_lease.count());
}

std::optional<Claim> PgStore::take(const pg::Result& r, int i, const std::string& owner) {
    Claim c{r.integer(i, 0), r.integer(i, 1), r.text(i, 2), r.text(i, 3),
            {int(r.integer(i, 4)), int(r.integer(i, 5))}, int(r.integer(i, 6)) + 1};
    c_.exec("UPDATE rag_attachments SET owner = $2, owner_host = $3, heartbeat = $4, attempts = attempts + 1 "
            "WHERE rowid = $1",
            {str(c.attachment), owner, host_, str(now_seconds())});
    return c;
}

std::optional<Claim> PgStore::claim_next(const std::string& owner, int max_attempts) {
    return pg::in_transaction(c_, [&]() -> std::optional<Claim> {
        // SKIP LOCKED: another machine claiming at the same moment takes another file, or waits for
        // none.
        pg::Result r = c_.exec(std::string("SELECT ") + claim_cols +
                               " FROM rag_attachments a JOIN rag_stores s ON s.rowid = a.store "
                               "WHERE a.status = 'in_progress' ORDER BY a.rowid FOR UPDATE OF a SKIP LOCKED");
        for (int i = 0; i < r.rows(); ++i) {
            if (claim_alive(r.text(i, 7), r.text(i, 8), r.integer(i, 9), owner)) continue;   // being ingested
            int attempts = int(r.integer(i, 6));
            if (attempts >= max_attempts) {
                c_.exec("UPDATE rag_attachments SET status = 'failed', owner = '', error_code = 'server_error', "
                        "error_message = $2 WHERE rowid = $1",
                        {r.text(i, 0), "ingest interrupted " + std::to_string(attempts) +
                                           " times (the process ingesting it stopped or crashed); attach the file "
                                           "again to retry"});
                continue;
            }
            return take(r, i, owner);
        }
        return std::nullopt;
    });
}

std::optional<Claim> PgStore::claim(long attachment, const std::string& owner) {
    return pg::in_transaction(c_, [&]() -> std::optional<Claim> {
        pg::Result r = c_.exec(std::string("SELECT ") + claim_cols +
                                   " FROM rag_attachments a JOIN rag_stores s ON s.rowid = a.store "
                                   "WHERE a.rowid = $1 AND a.status = 'in_progress' FOR UPDATE OF a",
                               {str(attachment)});
        if (!r.rows()) return std::nullopt;
        std::string current = r.text(0, 7);
        if (current != owner && claim_alive(current, r.text(0, 8), r.integer(0, 9), owner)) return std::nullopt;
        return take(r, 0, owner);
    });
}

bool PgStore::still_claimed(long attachment, const std::string& owner) {
    // The ingest asks before each embedding batch: the answer is also its heartbeat.
    return pg::in_transaction(c_, [&] {
        return c_.exec("UPDATE rag_attachments SET heartbeat = $4 WHERE rowid = $1 AND status = 'in_progress' "
                       "AND owner = $2 AND owner_host = $3",
                       {str(attachment), owner, host_, str(now_seconds())})
                   .affected() > 0;
    });
}

std::vector<std::optional<std::vector<float>>> PgStore::cached_vectors(const std::string& model,
                                                                      const std::vector<std::string>& hashes) {
    return pg::in_transaction(c_, [&] {
        std::vector<std::optional<std::vector<float>>> out(hashes.size());
        for (std::size_t i = 0; i < hashes.size(); ++i) {
            pg::Result r = c_.exec("SELECT vector FROM rag_embeddings WHERE model = $1 AND hash = $2::bytea",
                                   {model, bytea_text(hashes[i])});
            if (r.rows()) out[i] = floats_of(from_bytea_text(r.text(0, 0)));
        }
        return out;
    });
}

void PgStore::put_vectors(const std::string& model, const std::vector<std::string>& hashes,
                          const std::vector<std::vector<float>>& vectors) {
    // With pgvector, the vector goes in both forms: bytea stays the portable truth (a database whose
    // pgvector is removed keeps working through the pools' indexes).
    std::string sql = pgvector_
        ? "INSERT INTO rag_embeddings(model, hash, dims, vector, embedding) VALUES($1, $2::bytea, $3, $4::bytea, "
          "$5::vector) ON CONFLICT(model, hash) DO UPDATE SET dims = excluded.dims, vector = excluded.vector, "
          "embedding = excluded.embedding"
        : "INSERT INTO rag_embeddings(model, hash, dims, vector) VALUES($1, $2::bytea, $3, $4::bytea) "
          "ON CONFLICT(model, hash) DO UPDATE SET dims = excluded.dims, vector = excluded.vector";
    pg::in_transaction(c_, [&] {
        for (std::size_t i = 0; i < hashes.size() && i < vectors.size(); ++i) {
            std::vector<pg::Param> params{model, bytea_text(hashes[i]), str(long(vectors[i].size())),
                                          bytea_text(bytes_of(vectors[i]))};
            if (pgvector_) params.push_back(vector_text(vectors[i]));
            c_.exec(sql, params);
        }
    });
    if (pgvector_ && !vectors.empty()) ensure_vector_index(int(vectors.front().size()));
}

// pgvector indexes a column of one dimension: the column holds every model's vectors, so each
// dimension gets an index of its own, an expression index over the rows of that dimension, made the
// first time vectors of it are stored (CONCURRENTLY would not block ingest elsewhere, but cannot run
// in a transaction block; the table is locked against writes while the index is built once).
void PgStore::ensure_vector_index(int dims) {
    if (dims <= 0 || std::find(indexed_dims_.begin(), indexed_dims_.end(), dims) != indexed_dims_.end()) return;
    std::string d = std::to_string(dims);
    std::string name = "rag_embeddings_hnsw_" + d;
    // Looked up first: CREATE INDEX IF NOT EXISTS locks the table against writes even when the
    // index exists.
    if (c_.exec("SELECT 1 FROM pg_class WHERE relname = $1", {name}).rows()) {
        indexed_dims_.push_back(dims);
        return;
    }
    try {
        c_.exec("CREATE INDEX IF NOT EXISTS " + name + " ON rag_embeddings USING hnsw "
                "((embedding::vector(" + d + ")) vector_cosine_ops) WHERE dims = " + d);
    } catch (const pg::Error& e) {
        if (e.sqlstate != "23505" && e.sqlstate != "42P07") throw;   // another machine made it meanwhile
    }
    indexed_dims_.push_back(dims);
}

std::vector<std::pair<long, double>> PgStore::nearest(long store_rowid, const std::string& model,
                                                      const std::vector<float>& query, int limit,
                                                      const std::optional<std::vector<long>>& allowed, int ef_search) {
    std::vector<std::pair<long, double>> out;
    if (query.empty() || (allowed && allowed->empty())) return out;
    std::string d = std::to_string(query.size());   // an integer: the index's expression, literally
    std::string distance = "e.embedding::vector(" + d + ") <=> $2::vector(" + d + ")";
    std::string sql = "SELECT c.id, 1 - (" + distance + ") FROM rag_embeddings e JOIN rag_chunks c ON c.hash = e.hash "
                      "WHERE e.model = $1 AND e.dims = " + d + " AND c.store = $3";
    std::vector<pg::Param> params{model, vector_text(query), str(store_rowid), str(limit)};
    if (allowed) {
        sql += " AND c.attachment = ANY($5::bigint[])";
        params.push_back(int_array(*allowed));
    }
    sql += " ORDER BY " + distance + " LIMIT $4";
    ensure_vector_index(int(query.size()));
    return pg::in_transaction(c_, [&] {
        // pgvector 0.8's iterative scans: the index is walked on until `limit` rows pass the store's
        // and the filter's conditions (the post-filter that returns fewer is not repeated here).
        c_.exec("SET LOCAL hnsw.iterative_scan = strict_order");
        c_.exec("SET LOCAL hnsw.ef_search = " + std::to_string(std::clamp(std::max(ef_search, limit), 1, max_ef_search)));
        pg::Result r = c_.exec(sql, params);
        for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.integer(i, 0), std::stod(r.text(i, 1)));
        return out;
    });
}

std::string vector_text(const std::vector<float>& v) {
    std::string out = "[";
    char buf[32];
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v[i]);
        out.append(buf, end);
    }
    return out + "]";
}

bool PgStore::complete(const Claim& c, const std::string& owner, const std::vector<StoredChunk>& chunks,
                       const std::string& model, int dims, long embedded) {
    return pg::in_transaction(c_, [&] {
        pg::Result mine = c_.exec("SELECT 1 FROM rag_attachments WHERE rowid = $1 AND status = 'in_progress' "
                                  "AND owner = $2 AND owner_host = $3 FOR UPDATE",
                                  {str(c.attachment), owner, host_});
        if (!mine.rows()) return false;
        // The store's row locked: two machines completing files of one store decide its model in turn.
        pg::Result s = c_.exec("SELECT embedding_model, dims, EXISTS (SELECT 1 FROM rag_attachments WHERE store = $1 "
                               "AND chunks > 0) FROM rag_stores WHERE rowid = $1 FOR UPDATE",
                               {str(c.store)});
        if (!s.rows()) return false;
        std::string have = s.text(0, 0);
        int have_dims = int(s.integer(0, 1));
        if (s.text(0, 2) == "t" && (have != model || have_dims != dims))
            throw ModelMismatch(model_mismatch_message(c.store_id, have, have_dims, model, dims));
        c_.exec("UPDATE rag_stores SET embedding_model = $2, dims = $3 WHERE rowid = $1", {str(c.store), model, str(dims)});
        long usage = 0;
        for (std::size_t i = 0; i < chunks.size(); ++i) {
            const Chunk& ch = chunks[i].chunk;
            std::string heading = heading_text(ch.headings);
            c_.exec("INSERT INTO rag_chunks(attachment, store, seq, heading, text, page, tokens, hash, tsv) "
                    "SELECT $1, $2, $3, $4, $5, $6, $7, $8::bytea, to_tsvector(ts_config, $4::text || E'\\n' || $5::text) "
                    "FROM rag_stores WHERE rowid = $2",
                    {str(c.attachment), str(c.store), str(long(i)), heading, ch.text, str(ch.page), str(ch.tokens),
                     bytea_text(chunks[i].hash)});
            usage += long(ch.text.size()) + long(dims) * long(sizeof(float));
        }
        c_.exec("UPDATE rag_attachments SET status = 'completed', owner = '', chunks = $2, embedded = $3, "
                "usage_bytes = $4 WHERE rowid = $1",
                {str(c.attachment), str(long(chunks.size())), str(embedded), str(usage)});
        c_.exec("UPDATE rag_stores SET generation = generation + 1, last_active_at = $2 WHERE rowid = $1",
                {str(c.store), str(now_seconds())});
        return true;
    });
}

void PgStore::fail(long attachment, const std::string& owner, const std::string& code, const std::string& message) {
    pg::in_transaction(c_, [&] {
        c_.exec("UPDATE rag_attachments SET status = 'failed', owner = '', error_code = $3, error_message = $4 "
                "WHERE rowid = $1 AND owner = $2 AND status = 'in_progress'",
                {str(attachment), owner, code, message});
    });
}

void PgStore::release(long attachment, const std::string& owner) {
    pg::in_transaction(c_, [&] {
        c_.exec("UPDATE rag_attachments SET owner = '', attempts = GREATEST(attempts - 1, 0) WHERE rowid = $1 "
                "AND owner = $2",
                {str(attachment), owner});
    });
}

long PgStore::generation(long store_rowid) {
    return pg::in_transaction(c_, [&] {
        pg::Result r = c_.exec("SELECT generation FROM rag_stores WHERE rowid = $1", {str(store_rowid)});
        return r.rows() ? r.integer(0, 0) : -1L;
    });
}

std::vector<Vector> PgStore::vectors(long store_rowid, const std::string& model, long after_chunk) {
    // By pages: a whole store at once (100,000 vectors of 512 dimensions are 400 MB of hex) would be
    // held twice in memory and could outlast postgres_statement_timeout. A chunk added or removed
    // between two pages is met by the index's next update (the store's generation moved).
    std::vector<Vector> out;
    for (;;) {
        std::size_t before = out.size();
        pg::in_transaction(c_, [&] {
            pg::Result r = c_.exec("SELECT c.id, c.attachment, e.vector FROM rag_chunks c JOIN rag_embeddings e "
                                   "ON e.model = $2 AND e.hash = c.hash WHERE c.store = $1 AND c.id > $3 "
                                   "ORDER BY c.id LIMIT $4",
                                   {str(store_rowid), model, str(after_chunk), str(vector_page_rows)});
            for (int i = 0; i < r.rows(); ++i)
                out.push_back({r.integer(i, 0), r.integer(i, 1), floats_of(from_bytea_text(r.text(i, 2)))});
        });
        if (out.size() - before < std::size_t(vector_page_rows)) return out;
        after_chunk = out.back().chunk;
    }
}

std::vector<long> PgStore::chunk_ids(long store_rowid) {
    return pg::in_transaction(c_, [&] {
        std::vector<long> out;
        pg::Result r = c_.exec("SELECT id FROM rag_chunks WHERE store = $1 ORDER BY id", {str(store_rowid)});
        out.reserve(std::size_t(r.rows()));
        for (int i = 0; i < r.rows(); ++i) out.push_back(r.integer(i, 0));
        return out;
    });
}

bool PgStore::has_chunks(long store_rowid) {
    return pg::in_transaction(c_, [&] {
        return c_.exec("SELECT 1 FROM rag_attachments WHERE store = $1 AND chunks > 0 LIMIT 1", {str(store_rowid)}).rows() > 0;
    });
}

std::vector<AttachmentMeta> PgStore::completed_attachments(long store_rowid) {
    return pg::in_transaction(c_, [&] {
        std::vector<AttachmentMeta> out;
        pg::Result r = c_.exec("SELECT a.rowid, a.file_id, f.filename, a.attributes FROM rag_attachments a "
                               "JOIN rag_files f ON f.id = a.file_id WHERE a.store = $1 AND a.status = 'completed' "
                               "ORDER BY a.rowid",
                               {str(store_rowid)});
        for (int i = 0; i < r.rows(); ++i) out.push_back({r.integer(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3)});
        return out;
    });
}

std::vector<std::pair<long, double>> PgStore::bm25(long store_rowid, const std::string& query, int limit,
                                                   const std::optional<std::vector<long>>& allowed) {
    std::vector<std::pair<long, double>> out;
    // The query's words joined by `|` (OR): none of them can be tsquery syntax (query_words.hpp);
    // to_tsquery stems each with the store's configuration and drops its stop words.
    std::string words = join_query_words(query, " | ", "");
    if (words.empty() || (allowed && allowed->empty())) return out;
    return pg::in_transaction(c_, [&] {
        // Normalization 1: the rank divided by 1 + log(the chunk's length), as BM25 discounts long
        // documents.
        std::string sql = "SELECT c.id, ts_rank(c.tsv, q, 1) FROM rag_chunks c, "
                          "to_tsquery((SELECT ts_config FROM rag_stores WHERE rowid = $1), $2) q "
                          "WHERE c.store = $1 AND c.tsv @@ q";
        std::vector<pg::Param> params{str(store_rowid), words, str(limit)};
        if (allowed) {
            sql += " AND c.attachment = ANY($4::bigint[])";
            params.push_back(int_array(*allowed));
        }
        sql += " ORDER BY 2 DESC, c.id LIMIT $3";
        pg::Result r = c_.exec(sql, params);
        for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.integer(i, 0), std::stod(r.text(i, 1)));
        return out;
    });
}

std::vector<ChunkRow> PgStore::chunks(const std::vector<long>& ids) {
    if (ids.empty()) return {};
    return pg::in_transaction(c_, [&] {
        std::vector<ChunkRow> out;
        pg::Result r = c_.exec("SELECT id, attachment, seq, heading, text, page FROM rag_chunks WHERE id = ANY($1::bigint[])",
                               {int_array(ids)});
        for (int i = 0; i < r.rows(); ++i)
            out.push_back({r.integer(i, 0), r.integer(i, 1), int(r.integer(i, 2)), r.text(i, 3), r.text(i, 4),
                           int(r.integer(i, 5))});
        return out;
    });
}

void PgStore::touch_store(long store_rowid) {
    pg::in_transaction(c_, [&] {
        c_.exec("UPDATE rag_stores SET last_active_at = $2 WHERE rowid = $1", {str(store_rowid), str(now_seconds())});
    });
}

}  // namespace agente::rag
