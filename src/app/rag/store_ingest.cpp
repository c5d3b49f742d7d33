// The ingest side of the Store: claims, the embedding cache, and the one transaction that completes a
// file.
#include "app/rag/owner.hpp"
#include "app/rag/sqlite_store.hpp"

#include <openssl/evp.h>

#include <cstring>

namespace agente::rag {

using sqlite::Stmt;
using sqlite::Transaction;

std::string heading_text(const std::vector<std::string>& headings) {
    std::string out;
    for (const auto& h : headings) out += (out.empty() ? "" : " > ") + h;
    return out;
}

std::string embedding_text(const Chunk& c) {
    std::string h = heading_text(c.headings);
    return h.empty() ? c.text : h + "\n\n" + c.text;
}

std::string chunk_hash(const Chunk& c) {
    std::string text = embedding_text(c);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(text.data(), text.size(), md, &n, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<const char*>(md), n);
}

std::string model_mismatch_message(const std::string& store_id, const std::string& have, int have_dims,
                                   const std::string& model, int dims) {
    auto name = [](const std::string& m, int d) {
        return m.empty() ? std::string("no embedding model (keyword search only)")
                         : "model \"" + m + "\" (" + std::to_string(d) + " dimensions)";
    };
    return "vector store " + store_id + " holds vectors of " + name(have, have_dims) + ", but this file was embedded with " +
           name(model, dims) + ": use the store's model ([rag] embedding_model), or a new vector store";
}

std::optional<Claim> SqliteStore::claim_next(const std::string& owner, int max_attempts) {
    Transaction t(db_);
    struct Row {
        Claim c;
        std::string owner;
    };
    std::vector<Row> rows;
    {
        Stmt s(db_, "SELECT a.rowid, a.store, s.id, a.file_id, a.max_tokens, a.overlap_tokens, a.attempts, a.owner "
                    "FROM attachments a JOIN stores s ON s.rowid = a.store WHERE a.status = 'in_progress' ORDER BY a.rowid");
        while (s.step())
            rows.push_back({{s.integer(0), s.integer(1), s.text(2), s.text(3), {int(s.integer(4)), int(s.integer(5))},
                             int(s.integer(6))},
                            s.text(7)});
    }
    std::optional<Claim> claimed;
    for (Row& r : rows) {
        if (!r.owner.empty() && (r.owner == owner || owner_alive(r.owner))) continue;   // being ingested
        if (r.c.attempt >= max_attempts) {
            Stmt f(db_, "UPDATE attachments SET status = 'failed', owner = '', error_code = 'server_error', "
                        "error_message = ?2 WHERE rowid = ?1");
            f.bind(1, r.c.attachment)
                .bind(2, "ingest interrupted " + std::to_string(r.c.attempt) +
                             " times (the process ingesting it stopped or crashed); attach the file again to retry")
                .step();
            continue;
        }
        Stmt u(db_, "UPDATE attachments SET owner = ?2, attempts = attempts + 1 WHERE rowid = ?1");
        u.bind(1, r.c.attachment).bind(2, owner).step();
        r.c.attempt += 1;
        claimed = r.c;
        break;
    }
    t.commit();
    return claimed;
}

std::optional<Claim> SqliteStore::claim(long attachment, const std::string& owner) {
    Transaction t(db_);
    Stmt s(db_, "SELECT a.rowid, a.store, s.id, a.file_id, a.max_tokens, a.overlap_tokens, a.attempts, a.owner "
                "FROM attachments a JOIN stores s ON s.rowid = a.store WHERE a.rowid = ?1 AND a.status = 'in_progress'");
    s.bind(1, attachment);
    if (!s.step()) return std::nullopt;
    Claim c{s.integer(0), s.integer(1), s.text(2), s.text(3), {int(s.integer(4)), int(s.integer(5))}, int(s.integer(6)) + 1};
    std::string current = s.text(7);
    if (!current.empty() && current != owner && owner_alive(current)) return std::nullopt;
    Stmt u(db_, "UPDATE attachments SET owner = ?2, attempts = attempts + 1 WHERE rowid = ?1");
    u.bind(1, attachment).bind(2, owner).step();
    t.commit();
    return c;
}

bool SqliteStore::still_claimed(long attachment, const std::string& owner) {
    Stmt s(db_, "SELECT 1 FROM attachments WHERE rowid = ?1 AND status = 'in_progress' AND owner = ?2");
    s.bind(1, attachment).bind(2, owner);
    return s.step();
}

std::vector<std::optional<std::vector<float>>> SqliteStore::cached_vectors(const std::string& model,
                                                                    const std::vector<std::string>& hashes) {
    std::vector<std::optional<std::vector<float>>> out(hashes.size());
    Stmt s(db_, "SELECT vector FROM embeddings WHERE model = ?1 AND hash = ?2");
    for (std::size_t i = 0; i < hashes.size(); ++i) {
        s.bind(1, model).bind_blob(2, hashes[i].data(), hashes[i].size());
        if (s.step()) {
            std::string_view b = s.blob(0);
            std::vector<float> v(b.size() / sizeof(float));
            std::memcpy(v.data(), b.data(), v.size() * sizeof(float));
            out[i] = std::move(v);
        }
        s.reset();
    }
    return out;
}

void SqliteStore::put_vectors(const std::string& model, const std::vector<std::string>& hashes,
                        const std::vector<std::vector<float>>& vectors) {
    Transaction t(db_);
    Stmt s(db_, "INSERT OR REPLACE INTO embeddings(model, hash, dims, vector) VALUES(?1, ?2, ?3, ?4)");
    for (std::size_t i = 0; i < hashes.size() && i < vectors.size(); ++i) {
        s.bind(1, model).bind_blob(2, hashes[i].data(), hashes[i].size()).bind(3, long(vectors[i].size()));
        s.bind_blob(4, vectors[i].data(), vectors[i].size() * sizeof(float)).step();
        s.reset();
    }
    t.commit();
}

bool SqliteStore::complete(const Claim& c, const std::string& owner, const std::vector<StoredChunk>& chunks,
                     const std::string& model, int dims, long embedded) {
    Transaction t(db_);
    if (!still_claimed(c.attachment, owner)) return false;
    {
        Stmt s(db_, "SELECT embedding_model, dims, EXISTS (SELECT 1 FROM attachments WHERE store = ?1 AND chunks > 0) "
                    "FROM stores WHERE rowid = ?1");
        s.bind(1, c.store);
        if (!s.step()) return false;
        std::string have = s.text(0);
        int have_dims = int(s.integer(1));
        bool has_chunks = s.integer(2) != 0;
        if (has_chunks && (have != model || have_dims != dims)) {
            throw ModelMismatch(model_mismatch_message(c.store_id, have, have_dims, model, dims));
        }
        Stmt u(db_, "UPDATE stores SET embedding_model = ?2, dims = ?3 WHERE rowid = ?1");
        u.bind(1, c.store).bind(2, model).bind(3, dims).step();
    }
    std::string fts = "fts_" + std::to_string(c.store);
    Stmt ins(db_, "INSERT INTO chunks(attachment, seq, heading, text, page, tokens, hash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    Stmt idx(db_, "INSERT INTO " + fts + "(rowid, heading, text) VALUES(?1, ?2, ?3)");
    long usage = 0;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        const Chunk& ch = chunks[i].chunk;
        std::string heading = heading_text(ch.headings);
        ins.bind(1, c.attachment).bind(2, long(i)).bind(3, heading).bind(4, ch.text).bind(5, ch.page);
        ins.bind(6, ch.tokens).bind_blob(7, chunks[i].hash.data(), chunks[i].hash.size()).step();
        ins.reset();
        idx.bind(1, long(db_.last_insert_rowid())).bind(2, heading).bind(3, ch.text).step();
        idx.reset();
        usage += long(ch.text.size()) + long(dims) * long(sizeof(float));
    }
    Stmt done(db_, "UPDATE attachments SET status = 'completed', owner = '', chunks = ?2, embedded = ?3, usage_bytes = ?4 "
                   "WHERE rowid = ?1");
    done.bind(1, c.attachment).bind(2, long(chunks.size())).bind(3, embedded).bind(4, usage).step();
    Stmt g(db_, "UPDATE stores SET generation = generation + 1, last_active_at = ?2 WHERE rowid = ?1");
    g.bind(1, c.store).bind(2, now_seconds()).step();
    t.commit();
    return true;
}

void SqliteStore::fail(long attachment, const std::string& owner, const std::string& code, const std::string& message) {
    Stmt s(db_, "UPDATE attachments SET status = 'failed', owner = '', error_code = ?3, error_message = ?4 "
                "WHERE rowid = ?1 AND owner = ?2 AND status = 'in_progress'");
    s.bind(1, attachment).bind(2, owner).bind(3, code).bind(4, message).step();
}

void SqliteStore::release(long attachment, const std::string& owner) {
    Stmt s(db_, "UPDATE attachments SET owner = '', attempts = MAX(attempts - 1, 0) WHERE rowid = ?1 AND owner = ?2");
    s.bind(1, attachment).bind(2, owner).step();
}

}  // namespace agente::rag
