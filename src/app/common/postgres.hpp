// PostgreSQL through libpq, for the parts of the app that keep state in it when [cluster] names a
// server (the agent's conversations and tasks): a connection, results freed however the scope ends,
// transactions rolled back when left by an exception. Every call blocks on the network: none of this
// may run on a worker's event loop (it runs where SQLite's calls do: a store thread, a dirty worker,
// a command).
//
// libpq is opened on first use rather than linked, as libstemmer is (rag/stemmer_library.hpp): it
// pulls in two dozen libraries (Kerberos, LDAP...), whose relocations would be private pages in
// every process of the binary, and only the processes that talk to the database need it.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

struct pg_conn;
struct pg_result;

namespace agente::pg {

// A failed call. `connection_lost`: the server is gone (down, restarted, network), as opposed to a
// statement it refused; `sqlstate` is PostgreSQL's five-character code ("40P01"), "" when none.
class Error : public std::runtime_error {
public:
    Error(const std::string& what, bool connection_lost, std::string sqlstate = {})
        : std::runtime_error(what), connection_lost(connection_lost), sqlstate(std::move(sqlstate)) {}
    bool connection_lost;
    std::string sqlstate;
};

// "" when libpq accepts `url` as a connection string, else why not (never quoting the URL: it may
// hold a password). Loads libpq.
std::string check_url(const std::string& url);

// Unloads libpq, opened again by the next use. Only once no connection is open and no other thread
// uses it: the master, after its start-up check, whose HTTP workers are forked from it and must not
// carry the library (and what it pulls in) where the store never runs.
void unload_library();

struct Options {
    std::chrono::seconds connect_timeout{5};
    std::chrono::milliseconds statement_timeout{5000};
    std::string application_name = "agente-hibrido";
};

class Result {
public:
    explicit Result(pg_result* r) : r_(r) {}
    ~Result();
    Result(Result&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
    Result(const Result&) = delete;
    Result& operator=(const Result&) = delete;
    Result& operator=(Result&&) = delete;

    int rows() const;
    bool is_null(int row, int col) const;
    std::string text(int row, int col) const;
    long integer(int row, int col) const;
    long affected() const;   // rows an INSERT/UPDATE/DELETE touched

private:
    pg_result* r_;
};

using Param = std::optional<std::string>;   // nullopt is SQL NULL

class Connection {
public:
    // Connects; throws Error(connection_lost = true) naming the server (password masked).
    Connection(std::string url, Options options);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // One statement with $1.. parameters as text; throws Error on any failure.
    Result exec(const std::string& sql, const std::vector<Param>& params = {});
    // Several statements without parameters (a migration's script).
    void exec_script(const std::string& sql);
    // The connection is known broken (a call failed for it).
    bool broken() const;
    // Connects again (after broken()); throws Error when the server still cannot be reached.
    void reconnect();
    const std::string& where() const { return where_; }   // the URL, password masked

private:
    void connect();
    [[noreturn]] void raise(const std::string& what, pg_result* r);

    std::string url_;
    Options options_;
    std::string where_;
    pg_conn* conn_ = nullptr;
};

// BEGIN now, ROLLBACK when left without commit(). A BEGIN on a connection the server dropped while
// it was idle (a restart between two requests) is retried once on a new connection: nothing of the
// caller's ran yet, so that is safe, and the first request after a restart is not lost to it.
class Transaction {
public:
    explicit Transaction(Connection& c);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    Connection& c_;
    bool done_ = false;
};

// SQLSTATE classes a transaction may simply be run again after: serialization failure, deadlock.
bool retryable(const Error& e);

// The server cannot answer now (down, restarting, overloaded, a statement timeout, the schema not
// migrated yet): a 503 for the client, as opposed to a statement it refused (this build's bug).
bool database_unavailable(const Error& e);

// A transaction chosen as a deadlock's victim is run again this many times in all.
inline constexpr int transaction_attempts = 3;

// fn() in one transaction (a connection dropped while idle is made again first), run again when
// PostgreSQL chose it as a deadlock's or a serialization failure's victim (two machines at once).
template <class F>
auto in_transaction(Connection& c, F fn) {
    for (int attempt = 1;; ++attempt) {
        try {
            Transaction t(c);
            if constexpr (std::is_void_v<decltype(fn())>) {
                fn();
                t.commit();
                return;
            } else {
                auto out = fn();
                t.commit();
                return out;
            }
        } catch (const Error& e) {
            if (!retryable(e) || attempt == transaction_attempts) throw;
        }
    }
}

}  // namespace agente::pg
