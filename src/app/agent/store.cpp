// SQLite through its C API. Every write is one BEGIN IMMEDIATE transaction, so two workers never
// deadlock upgrading a read lock; the busy timeout covers the wait for the other's commit.
#include "app/agent/store.hpp"

#include "app/common/sqlite.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <filesystem>
#include <stdexcept>

namespace agente::agent {

namespace {

using sqlite::Stmt;
using sqlite::Transaction;

// Opening a database other workers are opening too may meet a lock the busy timeout does not cover
// (LazyStore's attempts).
constexpr auto open_retry_pause = std::chrono::milliseconds(50);

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS contexts (
    id TEXT PRIMARY KEY,
    last_used INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS contexts_by_use ON contexts(last_used);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    context_id TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_context ON messages(context_id, seq);
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    context_id TEXT NOT NULL,
    state TEXT NOT NULL,
    reply TEXT NOT NULL,
    updated TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    citations TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tasks_by_context ON tasks(context_id);
)sql";

// What a stored message weighs: its text and role in bytes (length() of TEXT counts characters).
#define MESSAGE_BYTES_SQL "length(CAST(content AS BLOB)) + length(CAST(role AS BLOB))"

// Marks a context used: the next value of one counter every worker shares through the database, so
// the order of use is exact whichever process wrote it.
void touch(sqlite3* db, const std::string& context_id) {
    Stmt s(db, "INSERT INTO contexts(id, last_used) VALUES(?1, (SELECT COALESCE(MAX(last_used), 0) + 1 FROM contexts)) "
               "ON CONFLICT(id) DO UPDATE SET last_used = excluded.last_used");
    s.bind(1, context_id).step();
}

}  // namespace

ContextStore::ContextStore(const std::string& path, StoreLimits limits) : path_(path), limits_(limits) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string m = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        db_ = nullptr;
        throw std::runtime_error("cannot open " + path + ": " + m);
    }
    sqlite3_busy_timeout(db_, int(limits_.busy_timeout.count()));
    try {
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");
        exec(schema);
        add_citations_column();
    } catch (...) {
        sqlite3_close(db_);
        db_ = nullptr;
        throw;
    }
}

ContextStore::~ContextStore() { sqlite3_close(db_); }

// A database made before tasks kept their citations gets the column. Workers open it at once: one
// that finds the column added meanwhile (SQLite's "duplicate column name") has what it wanted.
void ContextStore::add_citations_column() {
    {
        Stmt s(db_, "SELECT COUNT(*) FROM pragma_table_info('tasks') WHERE name = 'citations'");
        if (s.step() && s.integer(0) > 0) return;
    }
    try {
        exec("ALTER TABLE tasks ADD COLUMN citations TEXT NOT NULL DEFAULT ''");
    } catch (const std::runtime_error& e) {
        if (std::string_view(e.what()).find("duplicate column") == std::string_view::npos) throw;
    }
}

void ContextStore::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string m = err ? err : sqlite3_errmsg(db_);
        sqlite3_free(err);
        throw std::runtime_error(path_ + ": " + m);
    }
}

std::vector<ChatMessage> ContextStore::history(const std::string& context_id) {
    Transaction t(db_);
    std::vector<ChatMessage> out;
    {
        Stmt s(db_, "SELECT role, content FROM messages WHERE context_id = ?1 ORDER BY seq");
        s.bind(1, context_id);
        while (s.step()) out.push_back({s.text(0), s.text(1)});
    }
    if (!out.empty()) touch(db_, context_id);
    t.commit();
    return out;
}

void ContextStore::append(const std::string& context_id, const std::vector<ChatMessage>& messages) {
    Transaction t(db_);
    touch(db_, context_id);
    {
        Stmt s(db_, "INSERT INTO messages(context_id, role, content) VALUES(?1, ?2, ?3)");
        for (auto& m : messages) {
            s.bind(1, context_id).bind(2, m.role).bind(3, m.content).step();
            s.reset();
        }
    }
    {
        Stmt s(db_, "DELETE FROM messages WHERE context_id = ?1 AND seq NOT IN "
                    "(SELECT seq FROM messages WHERE context_id = ?1 ORDER BY seq DESC LIMIT ?2)");
        s.bind(1, context_id).bind(2, long(limits_.max_messages)).step();
    }
    {
        // Newest first, each message with the bytes of itself and every newer one: those past the
        // bound go. (A count alone let 50 messages of 15 MB each into one context.)
        Stmt s(db_, "DELETE FROM messages WHERE seq IN (SELECT seq FROM (SELECT seq, SUM(" MESSAGE_BYTES_SQL ") "
                    "OVER (ORDER BY seq DESC) AS newer FROM messages WHERE context_id = ?1) WHERE newer > ?2)");
        s.bind(1, context_id).bind(2, limits_.max_context_bytes).step();
    }
    evict();
    t.commit();
}

// Within the caller's transaction.
void ContextStore::evict() {
    long excess = 0;
    {
        Stmt s(db_, "SELECT COUNT(*) FROM contexts");
        s.step();
        excess = s.integer(0) - limits_.max_contexts;
    }
    if (excess > 0) {
        exec("CREATE TEMP TABLE IF NOT EXISTS evicted(id TEXT PRIMARY KEY)");
        exec("DELETE FROM evicted");
        Stmt pick(db_, "INSERT INTO evicted SELECT id FROM contexts ORDER BY last_used LIMIT ?1");
        pick.bind(1, excess).step();
        exec("DELETE FROM messages WHERE context_id IN (SELECT id FROM evicted)");
        exec("DELETE FROM tasks WHERE context_id IN (SELECT id FROM evicted)");
        exec("DELETE FROM contexts WHERE id IN (SELECT id FROM evicted)");
    }
    Stmt s(db_, "DELETE FROM tasks WHERE seq <= (SELECT MAX(seq) FROM tasks) - ?1");
    s.bind(1, long(limits_.max_tasks)).step();
}

void ContextStore::put_task(const StoredTask& task) {
    Transaction t(db_);
    Stmt s(db_, "INSERT INTO tasks(id, context_id, state, reply, updated, citations) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, reply = excluded.reply, updated = excluded.updated, "
                "citations = excluded.citations");
    s.bind(1, task.id).bind(2, task.context_id).bind(3, task.state).bind(4, task.reply).bind(5, task.updated);
    s.bind(6, task.citations).step();
    {
        Stmt d(db_, "DELETE FROM tasks WHERE seq <= (SELECT MAX(seq) FROM tasks) - ?1");
        d.bind(1, long(limits_.max_tasks)).step();
    }
    t.commit();
}

std::optional<StoredTask> ContextStore::get_task(const std::string& id) {
    Stmt s(db_, "SELECT id, context_id, state, reply, updated, cancel_requested, citations FROM tasks WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return StoredTask{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.integer(5) != 0, s.text(6)};
}

bool ContextStore::request_cancel(const std::string& id) {
    Stmt s(db_, "UPDATE tasks SET cancel_requested = 1 WHERE id = ?1 AND state IN ('submitted', 'working')");
    s.bind(1, id).step();
    return sqlite3_changes(db_) > 0;
}

std::vector<std::string> ContextStore::cancel_requests(const std::vector<std::string>& running) {
    std::vector<std::string> out;
    Stmt s(db_, "SELECT cancel_requested FROM tasks WHERE id = ?1");
    for (auto& id : running) {
        s.bind(1, id);
        if (s.step() && s.integer(0) != 0) out.push_back(id);
        s.reset();
    }
    return out;
}

long ContextStore::context_count() {
    Stmt s(db_, "SELECT COUNT(*) FROM contexts");
    s.step();
    return s.integer(0);
}

long ContextStore::message_count(const std::string& context_id) {
    Stmt s(db_, "SELECT COUNT(*) FROM messages WHERE context_id = ?1");
    s.bind(1, context_id).step();
    return s.integer(0);
}

long ContextStore::context_bytes(const std::string& context_id) {
    Stmt s(db_, "SELECT COALESCE(SUM(" MESSAGE_BYTES_SQL "), 0) FROM messages WHERE context_id = ?1");
    s.bind(1, context_id).step();
    return s.integer(0);
}

long ContextStore::task_count() {
    Stmt s(db_, "SELECT COUNT(*) FROM tasks");
    s.step();
    return s.integer(0);
}

StoreOpener sqlite_opener(std::string path, StoreLimits limits) {
    return [path = std::move(path), limits]() -> std::unique_ptr<ConversationStore> {
        std::filesystem::path dir = std::filesystem::path(path).parent_path();
        if (!dir.empty()) std::filesystem::create_directories(dir);
        return std::make_unique<ContextStore>(path, limits);
    };
}

StoreThread::StoreThread(StoreOpener open, int open_attempts) : open_(std::move(open)), open_attempts_(open_attempts) {}

StoreThread::~StoreThread() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
}

void StoreThread::submit(Job job) {
    {
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(job));
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }
    wake_.notify_one();
}

void StoreThread::post(std::function<void(ConversationStore&)> fn) {
    submit([fn = std::move(fn)](ConversationStore* store, const std::string& open_error) {
        if (!store) return;
        try {
            fn(*store);
        } catch (const std::exception& e) {
            spdlog::error("agent: context store: {}", e.what());
        }
    });
}

ConversationStore* LazyStore::try_get() {
    for (int attempt = 0; attempt < attempts_ && !store_; ++attempt) {
        if (attempt) std::this_thread::sleep_for(open_retry_pause);
        try {
            store_ = open_();
        } catch (const std::exception& e) {
            error_ = e.what();
            if (attempt + 1 == attempts_) {
                auto d = log_.admit(app::LogLimit::Clock::now());
                if (d.log && d.left_out) spdlog::error("agent: context store: {} ({} more before not logged)", error_, d.left_out);
                else if (d.log) spdlog::error("agent: context store: {}", error_);
            }
        }
    }
    return store_.get();
}

ConversationStore& LazyStore::get() {
    if (ConversationStore* store = try_get()) return *store;
    throw std::runtime_error("context store unavailable: " + error_);
}

void StoreThread::run() {
    LazyStore store(std::move(open_), open_attempts_);
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        ConversationStore* open = store.try_get();
        job(open, store.error());
    }
}

}  // namespace agente::agent
