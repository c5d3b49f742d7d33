#include "app/common/sqlite.hpp"

#include <sqlite3.h>

#include <stdexcept>
#include <thread>

namespace agente::sqlite {

namespace {

// Opening a database other processes are opening too may meet a lock the busy timeout does not
// cover (the WAL switch itself).
constexpr int open_attempts = 5;
constexpr auto open_retry_pause = std::chrono::milliseconds(50);

void run(sqlite3* db, const char* sql, const std::string& where) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string m = err ? err : sqlite3_errmsg(db);
        sqlite3_free(err);
        throw std::runtime_error(where + ": " + m);
    }
}

}  // namespace

Db::Db(const std::string& path, std::chrono::milliseconds busy_timeout) : path_(path) {
    for (int attempt = 1;; ++attempt) {
        int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
        std::string m;
        if (rc == SQLITE_OK) {
            sqlite3_busy_timeout(db_, int(busy_timeout.count()));
            try {
                exec("PRAGMA journal_mode=WAL");
                exec("PRAGMA synchronous=NORMAL");
                exec("PRAGMA foreign_keys=ON");
                return;
            } catch (const std::exception& e) {
                m = e.what();
            }
        } else {
            m = "cannot open " + path + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
        }
        sqlite3_close(db_);
        db_ = nullptr;
        if (attempt >= open_attempts) throw std::runtime_error(m);
        std::this_thread::sleep_for(open_retry_pause);
    }
}

Db::~Db() { sqlite3_close(db_); }

void Db::exec(const char* sql) { run(db_, sql, path_); }

std::int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

int Db::changes() const { return sqlite3_changes(db_); }

Stmt::Stmt(sqlite3* db, std::string_view sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.data(), int(sql.size()), &s_, nullptr) != SQLITE_OK)
        throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
}

Stmt::~Stmt() { sqlite3_finalize(s_); }

Stmt& Stmt::bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
}

Stmt& Stmt::bind(int i, long v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
}

Stmt& Stmt::bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
}

Stmt& Stmt::bind_blob(int i, const void* data, std::size_t size) {
    sqlite3_bind_blob64(s_, i, data, sqlite3_uint64(size), SQLITE_TRANSIENT);
    return *this;
}

Stmt& Stmt::bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
}

bool Stmt::step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db_));
}

void Stmt::reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
}

std::string Stmt::text(int col) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, std::size_t(sqlite3_column_bytes(s_, col))) : std::string();
}

long Stmt::integer(int col) { return long(sqlite3_column_int64(s_, col)); }

double Stmt::real(int col) { return sqlite3_column_double(s_, col); }

bool Stmt::is_null(int col) { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

std::string_view Stmt::blob(int col) {
    auto p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string_view(p, std::size_t(sqlite3_column_bytes(s_, col))) : std::string_view();
}

Transaction::Transaction(sqlite3* db) : db_(db) { run(db_, "BEGIN IMMEDIATE", "sqlite BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
    run(db_, "COMMIT", "sqlite COMMIT");
    done_ = true;
}

}  // namespace agente::sqlite
