#include "app/cluster/migrations.hpp"

#include "app/common/postgres.hpp"

namespace agente::cluster {

namespace {

// pg_advisory_xact_lock's key for migrations: any constant no other part takes ("agmi" in ASCII).
constexpr const char* migration_lock = "1634166121";

constexpr const char* bookkeeping = R"sql(
CREATE TABLE IF NOT EXISTS agente_schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
)sql";

}  // namespace

const std::vector<Migration>& migrations() {
    // The agent's conversations and A2A tasks, as in SQLite (agent/store.cpp); last_used comes from a
    // sequence, one counter for every machine, so least-recently-used eviction orders them exactly.
    static const std::vector<Migration> all{
        {1, "agent_conversations", R"sql(
CREATE SEQUENCE agent_context_use;
CREATE TABLE agent_contexts (
    id text PRIMARY KEY,
    last_used bigint NOT NULL
);
CREATE INDEX agent_contexts_by_use ON agent_contexts(last_used);
CREATE TABLE agent_messages (
    seq bigserial PRIMARY KEY,
    context_id text NOT NULL,
    role text NOT NULL,
    content text NOT NULL
);
CREATE INDEX agent_messages_by_context ON agent_messages(context_id, seq);
CREATE TABLE agent_tasks (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    context_id text NOT NULL,
    state text NOT NULL,
    reply text NOT NULL,
    updated text NOT NULL,
    cancel_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX agent_tasks_by_context ON agent_tasks(context_id);
)sql"},
        // The RAG store (rag/pg_store.hpp), as in SQLite (rag/schema.cpp) with PostgreSQL's own text
        // search: each chunk's tsvector, built with its store's text search configuration (the
        // Snowball stemmer of its language), under a GIN index. Vectors are float32 bytes (bytea),
        // portable to any PostgreSQL; each machine's dirty pool indexes them (HNSW) in memory.
        // Chunks go with their attachment (ON DELETE CASCADE): no external-content index to keep.
        // An attachment being ingested names its owner's host, and a heartbeat, so that a machine
        // can tell a claim of its own dead process (resumed at once) from one of a live machine.
        {2, "rag_store", R"sql(
CREATE TABLE rag_files (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    filename text NOT NULL,
    purpose text NOT NULL,
    content_type text NOT NULL,
    bytes bigint NOT NULL,
    sha256 text NOT NULL,
    created_at bigint NOT NULL
);
CREATE TABLE rag_file_data (
    file_id text PRIMARY KEY REFERENCES rag_files(id) ON DELETE CASCADE,
    data bytea NOT NULL
);
CREATE TABLE rag_stores (
    rowid bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    name text NOT NULL,
    language text NOT NULL,
    ts_config regconfig NOT NULL,
    embedding_model text NOT NULL DEFAULT '',
    dims integer NOT NULL DEFAULT 0,
    metadata text NOT NULL DEFAULT '{}',
    created_at bigint NOT NULL,
    last_active_at bigint NOT NULL,
    generation bigint NOT NULL DEFAULT 0
);
CREATE INDEX rag_stores_by_name ON rag_stores(name);
CREATE TABLE rag_batches (
    id text PRIMARY KEY,
    store bigint NOT NULL REFERENCES rag_stores(rowid) ON DELETE CASCADE,
    created_at bigint NOT NULL
);
CREATE TABLE rag_attachments (
    rowid bigserial PRIMARY KEY,
    store bigint NOT NULL REFERENCES rag_stores(rowid) ON DELETE CASCADE,
    file_id text NOT NULL REFERENCES rag_files(id),
    batch_id text NOT NULL DEFAULT '',
    attributes text NOT NULL DEFAULT '{}',
    status text NOT NULL,
    error_code text NOT NULL DEFAULT '',
    error_message text NOT NULL DEFAULT '',
    max_tokens integer NOT NULL,
    overlap_tokens integer NOT NULL,
    created_at bigint NOT NULL,
    usage_bytes bigint NOT NULL DEFAULT 0,
    chunks bigint NOT NULL DEFAULT 0,
    embedded bigint NOT NULL DEFAULT 0,
    owner text NOT NULL DEFAULT '',
    owner_host text NOT NULL DEFAULT '',
    heartbeat bigint NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    UNIQUE (store, file_id)
);
CREATE INDEX rag_attachments_in_progress ON rag_attachments(rowid) WHERE status = 'in_progress';
CREATE INDEX rag_attachments_by_batch ON rag_attachments(batch_id) WHERE batch_id <> '';
CREATE INDEX rag_attachments_by_file ON rag_attachments(file_id);
CREATE TABLE rag_chunks (
    id bigserial PRIMARY KEY,
    attachment bigint NOT NULL REFERENCES rag_attachments(rowid) ON DELETE CASCADE,
    store bigint NOT NULL,
    seq integer NOT NULL,
    heading text NOT NULL,
    text text NOT NULL,
    page integer NOT NULL,
    tokens integer NOT NULL,
    hash bytea NOT NULL,
    tsv tsvector NOT NULL
);
CREATE INDEX rag_chunks_by_attachment ON rag_chunks(attachment, seq);
CREATE INDEX rag_chunks_by_store ON rag_chunks(store, id);
CREATE INDEX rag_chunks_by_hash ON rag_chunks(hash);
CREATE INDEX rag_chunks_text ON rag_chunks USING gin(tsv);
CREATE TABLE rag_embeddings (
    model text NOT NULL,
    hash bytea NOT NULL,
    dims integer NOT NULL,
    vector bytea NOT NULL,
    PRIMARY KEY (model, hash)
);
CREATE INDEX rag_embeddings_by_hash ON rag_embeddings(hash);
)sql"},
        // pgvector where the database has it (rag/pg_store.hpp: searches_vectors()): the extension
        // made when it is available and this user may (pgvector is not in Debian 12; a managed
        // PostgreSQL usually offers it), and a vector column beside the portable bytea. Without it
        // the migration changes nothing: the pools' indexes serve vector search.
        {3, "rag_pgvector", R"sql(
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        BEGIN
            CREATE EXTENSION vector;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'pgvector is available but this user may not create it: vector search stays in the pools';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        ALTER TABLE rag_embeddings ADD COLUMN embedding vector;
    END IF;
END
$$;
)sql"},
        // A grounded task's citations, so that GetTask answers what SendMessage did.
        {4, "agent_task_citations", R"sql(
ALTER TABLE agent_tasks ADD COLUMN citations text NOT NULL DEFAULT '';
)sql"},
    };
    return all;
}

int required_schema_version() { return migrations().empty() ? 0 : migrations().back().version; }

std::vector<Migration> pending_migrations(int current, const std::vector<Migration>& all) {
    std::vector<Migration> out;
    for (const auto& m : all)
        if (m.version > current) out.push_back(m);
    return out;
}

std::optional<std::string> schema_problem(std::optional<int> current, int required) {
    const std::string fix = ": run `agente-hibrido -c server.conf db migrate`";
    if (!current) return "the PostgreSQL schema was never created (this build needs version " +
                         std::to_string(required) + ")" + fix;
    if (*current < required)
        return "the PostgreSQL schema is at version " + std::to_string(*current) + ", this build needs " +
               std::to_string(required) + fix;
    return std::nullopt;
}

std::optional<int> schema_version(pg::Connection& c) {
    pg::Result exists = c.exec("SELECT to_regclass('agente_schema_migrations') IS NOT NULL");
    if (exists.text(0, 0) != "t") return std::nullopt;
    pg::Result r = c.exec("SELECT COALESCE(MAX(version), 0) FROM agente_schema_migrations");
    return int(r.integer(0, 0));
}

void check_schema(pg::Connection& c) {
    if (auto problem = schema_problem(schema_version(c), required_schema_version()))
        throw pg::Error(*problem, false);
}

MigrationReport migrate(pg::Connection& c) {
    pg::Transaction t(c);
    c.exec(std::string("SELECT pg_advisory_xact_lock(") + migration_lock + ")");
    c.exec_script(bookkeeping);
    MigrationReport report;
    report.from = schema_version(c).value_or(0);
    report.to = report.from;
    for (const auto& m : pending_migrations(report.from, migrations())) {
        c.exec_script(m.sql);
        c.exec("INSERT INTO agente_schema_migrations(version, name) VALUES($1, $2)", {std::to_string(m.version), m.name});
        report.applied.push_back(std::to_string(m.version) + " " + m.name);
        report.to = m.version;
    }
    t.commit();
    return report;
}

}  // namespace agente::cluster
