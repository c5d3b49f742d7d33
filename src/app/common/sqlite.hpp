// SQLite through its C API for every part of the app that keeps state (the agent's conversations,
// the RAG store): a connection, prepared statements finalized however the scope ends, and
// transactions rolled back when it is left by an exception. Every call blocks on the disk: none of
// this may run on a worker's event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace agente::sqlite {

// A connection in WAL mode (readers never wait for the writer, and a process killed mid-write loses
// only its uncommitted transaction) with synchronous=NORMAL (committed data survives any process
// crash; only a power loss may take back the last commits, never corrupting the file).
class Db {
public:
    // Opens (creating) `path`; throws std::runtime_error naming the file and SQLite's message.
    Db(const std::string& path, std::chrono::milliseconds busy_timeout);
    ~Db();
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;

    sqlite3* get() const { return db_; }
    const std::string& path() const { return path_; }
    // Runs one or more statements without results; throws naming the file.
    void exec(const char* sql);
    void exec(const std::string& sql) { exec(sql.c_str()); }
    std::int64_t last_insert_rowid() const;
    int changes() const;

private:
    sqlite3* db_ = nullptr;
    std::string path_;
};

// A prepared statement, finalized however the scope ends.
class Stmt {
public:
    Stmt(sqlite3* db, std::string_view sql);
    Stmt(const Db& db, std::string_view sql) : Stmt(db.get(), sql) {}
    ~Stmt();
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int i, std::string_view v);
    Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
    Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
    Stmt& bind(int i, long v);
    Stmt& bind(int i, long long v) { return bind(i, long(v)); }
    Stmt& bind(int i, int v) { return bind(i, long(v)); }
    Stmt& bind(int i, double v);
    Stmt& bind_blob(int i, const void* data, std::size_t size);
    Stmt& bind_null(int i);
    // true while there is a row.
    bool step();
    void reset();
    std::string text(int col);
    long integer(int col);
    double real(int col);
    bool is_null(int col);
    // Valid until the next step() or reset().
    std::string_view blob(int col);

private:
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when the scope is left by an exception. IMMEDIATE takes the
// write lock at once, so two processes never deadlock upgrading a read lock; the busy timeout covers
// the wait for the other's commit.
class Transaction {
public:
    explicit Transaction(sqlite3* db);
    explicit Transaction(const Db& db) : Transaction(db.get()) {}
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    sqlite3* db_;
    bool done_ = false;
};

}  // namespace agente::sqlite
