// The SQLite store's statements (store.cpp) in PostgreSQL's dialect. Writes are one transaction at
// READ COMMITTED; last_used comes from a sequence every machine shares.
#include "app/agent/pg_store.hpp"

#include "app/cluster/migrations.hpp"

namespace agente::agent {

namespace {

// What a stored message weighs: its text and role in bytes, as in SQLite's store.
#define PG_MESSAGE_BYTES "octet_length(content) + octet_length(role)"

std::string str(long v) { return std::to_string(v); }

void touch(pg::Connection& c, const std::string& context_id) {
    c.exec("INSERT INTO agent_contexts(id, last_used) VALUES($1, nextval('agent_context_use')) "
           "ON CONFLICT(id) DO UPDATE SET last_used = excluded.last_used",
           {context_id});
}

// The newest max_tasks tasks stay. Counted, not computed from seq as SQLite's store does: an INSERT
// ... ON CONFLICT takes a value of the sequence even when it updates, so seq has gaps here.
void trim_tasks(pg::Connection& c, int max_tasks) {
    c.exec("DELETE FROM agent_tasks WHERE seq IN (SELECT seq FROM agent_tasks ORDER BY seq DESC OFFSET $1)",
           {str(max_tasks)});
}

}  // namespace

PgContextStore::PgContextStore(const std::string& url, const pg::Options& options, StoreLimits limits)
    : c_(url, options), limits_(limits) {
    cluster::check_schema(c_);
}

std::vector<ChatMessage> PgContextStore::history(const std::string& context_id) {
    return pg::in_transaction(c_, [&] {
        std::vector<ChatMessage> out;
        pg::Result r = c_.exec("SELECT role, content FROM agent_messages WHERE context_id = $1 ORDER BY seq", {context_id});
        for (int i = 0; i < r.rows(); ++i) out.push_back({r.text(i, 0), r.text(i, 1)});
        if (!out.empty()) touch(c_, context_id);
        return out;
    });
}

void PgContextStore::append(const std::string& context_id, const std::vector<ChatMessage>& messages) {
    pg::in_transaction(c_, [&] {
        touch(c_, context_id);
        for (const auto& m : messages)
            c_.exec("INSERT INTO agent_messages(context_id, role, content) VALUES($1, $2, $3)",
                    {context_id, m.role, m.content});
        c_.exec("DELETE FROM agent_messages WHERE context_id = $1 AND seq NOT IN "
                "(SELECT seq FROM agent_messages WHERE context_id = $1 ORDER BY seq DESC LIMIT $2)",
                {context_id, str(limits_.max_messages)});
        c_.exec("DELETE FROM agent_messages WHERE seq IN (SELECT seq FROM (SELECT seq, SUM(" PG_MESSAGE_BYTES ") "
                "OVER (ORDER BY seq DESC) AS newer FROM agent_messages WHERE context_id = $1) w WHERE newer > $2)",
                {context_id, str(limits_.max_context_bytes)});
        evict();
    });
}

// Within the caller's transaction.
void PgContextStore::evict() {
    pg::Result n = c_.exec("SELECT COUNT(*) FROM agent_contexts");
    long excess = n.integer(0, 0) - limits_.max_contexts;
    if (excess > 0)
        c_.exec("WITH evicted AS (DELETE FROM agent_contexts WHERE id IN "
                "(SELECT id FROM agent_contexts ORDER BY last_used LIMIT $1) RETURNING id), "
                "gone AS (DELETE FROM agent_messages WHERE context_id IN (SELECT id FROM evicted)) "
                "DELETE FROM agent_tasks WHERE context_id IN (SELECT id FROM evicted)",
                {str(excess)});
    trim_tasks(c_, limits_.max_tasks);
}

void PgContextStore::put_task(const StoredTask& task) {
    pg::in_transaction(c_, [&] {
        c_.exec("INSERT INTO agent_tasks(id, context_id, state, reply, updated, citations) VALUES($1, $2, $3, $4, $5, $6) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, reply = excluded.reply, updated = excluded.updated, "
                "citations = excluded.citations",
                {task.id, task.context_id, task.state, task.reply, task.updated, task.citations});
        trim_tasks(c_, limits_.max_tasks);
    });
}

std::optional<StoredTask> PgContextStore::get_task(const std::string& id) {
    return pg::in_transaction(c_, [&]() -> std::optional<StoredTask> {
        pg::Result r = c_.exec("SELECT id, context_id, state, reply, updated, cancel_requested, citations FROM agent_tasks "
                               "WHERE id = $1", {id});
        if (r.rows() == 0) return std::nullopt;
        return StoredTask{r.text(0, 0), r.text(0, 1), r.text(0, 2), r.text(0, 3), r.text(0, 4), r.text(0, 5) == "t",
                          r.text(0, 6)};
    });
}

bool PgContextStore::request_cancel(const std::string& id) {
    return pg::in_transaction(c_, [&] {
        pg::Result r = c_.exec("UPDATE agent_tasks SET cancel_requested = true WHERE id = $1 "
                               "AND state IN ('submitted', 'working')", {id});
        return r.affected() > 0;
    });
}

std::vector<std::string> PgContextStore::cancel_requests(const std::vector<std::string>& running) {
    return pg::in_transaction(c_, [&] {
        std::vector<std::string> out;
        for (const auto& id : running) {
            pg::Result r = c_.exec("SELECT 1 FROM agent_tasks WHERE id = $1 AND cancel_requested", {id});
            if (r.rows() > 0) out.push_back(id);
        }
        return out;
    });
}

StoreOpener postgres_opener(const cluster::ClusterSettings& settings, StoreLimits limits) {
    pg::Options options;
    options.connect_timeout = settings.postgres_connect_timeout;
    options.statement_timeout = settings.postgres_statement_timeout;
    return [url = settings.postgres_url, error = settings.error, options, limits]() -> std::unique_ptr<ConversationStore> {
        if (!error.empty()) throw std::runtime_error(error);
        return std::make_unique<PgContextStore>(url, options, limits);
    };
}

}  // namespace agente::agent
