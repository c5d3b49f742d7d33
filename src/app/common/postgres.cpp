#include "app/common/postgres.hpp"

#include "app/cluster/settings.hpp"
#include "app/common/dynamic_library.hpp"

#include <libpq-fe.h>

#include <atomic>
#include <memory>
#include <mutex>

namespace agente::pg {

namespace {

// Debian's libpq5; libpq-dev's libpq.so is only a link to it.
constexpr const char* soname = "libpq.so.5";

struct Library {
    std::unique_ptr<app::DynamicLibrary> handle;
    decltype(&::PQconnectdbParams) connectdb_params = nullptr;
    decltype(&::PQstatus) status = nullptr;
    decltype(&::PQerrorMessage) error_message = nullptr;
    decltype(&::PQfinish) finish = nullptr;
    decltype(&::PQexec) exec = nullptr;
    decltype(&::PQexecParams) exec_params = nullptr;
    decltype(&::PQresultStatus) result_status = nullptr;
    decltype(&::PQresultErrorField) result_error_field = nullptr;
    decltype(&::PQresultErrorMessage) result_error_message = nullptr;
    decltype(&::PQclear) clear = nullptr;
    decltype(&::PQntuples) ntuples = nullptr;
    decltype(&::PQgetvalue) getvalue = nullptr;
    decltype(&::PQgetlength) getlength = nullptr;
    decltype(&::PQgetisnull) getisnull = nullptr;
    decltype(&::PQcmdTuples) cmd_tuples = nullptr;
    decltype(&::PQconninfoParse) conninfo_parse = nullptr;
    decltype(&::PQconninfoFree) conninfo_free = nullptr;
    decltype(&::PQfreemem) freemem = nullptr;
    std::string error;
};

std::unique_ptr<Library> open_library() {
    auto opened = std::make_unique<Library>();
    Library& l = *opened;
    l.handle = std::make_unique<app::DynamicLibrary>(soname);
    app::DynamicLibrary& library = *l.handle;
    library.find("PQconnectdbParams", l.connectdb_params);
    library.find("PQstatus", l.status);
    library.find("PQerrorMessage", l.error_message);
    library.find("PQfinish", l.finish);
    library.find("PQexec", l.exec);
    library.find("PQexecParams", l.exec_params);
    library.find("PQresultStatus", l.result_status);
    library.find("PQresultErrorField", l.result_error_field);
    library.find("PQresultErrorMessage", l.result_error_message);
    library.find("PQclear", l.clear);
    library.find("PQntuples", l.ntuples);
    library.find("PQgetvalue", l.getvalue);
    library.find("PQgetlength", l.getlength);
    library.find("PQgetisnull", l.getisnull);
    library.find("PQcmdTuples", l.cmd_tuples);
    library.find("PQconninfoParse", l.conninfo_parse);
    library.find("PQconninfoFree", l.conninfo_free);
    library.find("PQfreemem", l.freemem);
    l.error = library.error();
    return opened;  // closed only by unload_library: connections live as long as the process
}

std::mutex library_mutex;
std::unique_ptr<Library> library_storage;          // under library_mutex
std::atomic<const Library*> library_loaded{nullptr};

// Opened on first use (thread-safe); throws when it could not be.
const Library& pq() {
    const Library* library = library_loaded.load(std::memory_order_acquire);
    if (!library) {
        std::lock_guard lock(library_mutex);
        if (!library_storage) library_storage = open_library();
        library = library_storage.get();
        library_loaded.store(library, std::memory_order_release);
    }
    if (!library->error.empty()) throw Error(library->error, false);
    return *library;
}

// libpq's messages end in a newline, and may span several lines.
std::string one_line(const char* message) {
    std::string m = message ? message : "";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    for (char& c : m)
        if (c == '\n') c = ' ';
    return m;
}

}  // namespace

void unload_library() {
    std::lock_guard lock(library_mutex);
    library_loaded.store(nullptr, std::memory_order_release);
    if (library_storage) library_storage->handle->close();
    library_storage.reset();
}

std::string check_url(const std::string& url) {
    const Library& l = pq();
    char* err = nullptr;
    PQconninfoOption* options = l.conninfo_parse(url.c_str(), &err);
    if (options) {
        l.conninfo_free(options);
        return {};
    }
    // libpq's message may quote a piece of the URL, which may be the password: not shown.
    if (err) l.freemem(err);
    return "libpq does not accept this URL (postgresql://user:password@host:5432/dbname?sslmode=...; "
           "percent-encode reserved characters in the password)";
}

Result::~Result() {
    if (r_) pq().clear(r_);
}

int Result::rows() const { return pq().ntuples(r_); }
bool Result::is_null(int row, int col) const { return pq().getisnull(r_, row, col) != 0; }
std::string Result::text(int row, int col) const {
    return std::string(pq().getvalue(r_, row, col), std::size_t(pq().getlength(r_, row, col)));
}
long Result::integer(int row, int col) const { return std::stol(text(row, col)); }
long Result::affected() const {
    const char* n = pq().cmd_tuples(r_);
    return n && *n ? std::stol(n) : 0;
}

Connection::Connection(std::string url, Options options)
    : url_(std::move(url)), options_(std::move(options)), where_(cluster::redacted_url(url_)) {
    connect();
}

Connection::~Connection() {
    if (conn_) pq().finish(conn_);
}

void Connection::connect() {
    const Library& l = pq();
    if (conn_) {
        l.finish(conn_);
        conn_ = nullptr;
    }
    // The URL first, expanded (expand_dbname); the keywords after it win over its own.
    std::string connect_timeout = std::to_string(options_.connect_timeout.count());
    std::string user_timeout = std::to_string(options_.statement_timeout.count());
    const char* keys[] = {"dbname", "connect_timeout", "tcp_user_timeout", "application_name", nullptr};
    const char* values[] = {url_.c_str(), connect_timeout.c_str(), user_timeout.c_str(),
                            options_.application_name.c_str(), nullptr};
    conn_ = l.connectdb_params(keys, values, 1);
    if (!conn_) throw Error("PostgreSQL at " + where_ + ": out of memory", true);
    if (l.status(conn_) != CONNECTION_OK) {
        std::string why = one_line(l.error_message(conn_));
        l.finish(conn_);   // a constructor that throws runs no destructor
        conn_ = nullptr;
        throw Error("PostgreSQL at " + where_ + ": " + why, true);
    }
    // NOTICEs (a CREATE ... IF NOT EXISTS that skipped) would go to stderr, libpq's default.
    exec_script("SET statement_timeout = " + std::to_string(options_.statement_timeout.count()) +
                "; SET client_min_messages = warning");
}

bool Connection::broken() const { return !conn_ || pq().status(conn_) != CONNECTION_OK; }

void Connection::reconnect() { connect(); }

void Connection::raise(const std::string& what, pg_result* r) {
    const Library& l = pq();
    std::string state;
    if (r)
        if (const char* s = l.result_error_field(r, PG_DIAG_SQLSTATE)) state = s;
    std::string message = one_line(r ? l.result_error_message(r) : nullptr);
    if (message.empty()) message = one_line(l.error_message(conn_));
    if (r) l.clear(r);
    bool lost = broken();
    throw Error("PostgreSQL at " + where_ + ": " + what + ": " + message, lost, state);
}

Result Connection::exec(const std::string& sql, const std::vector<Param>& params) {
    const Library& l = pq();
    if (!conn_) throw Error("PostgreSQL at " + where_ + ": not connected", true);
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    pg_result* r = l.exec_params(conn_, sql.c_str(), int(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
    ExecStatusType st = r ? l.result_status(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) raise("query failed", r);
    return Result(r);
}

void Connection::exec_script(const std::string& sql) {
    const Library& l = pq();
    if (!conn_) throw Error("PostgreSQL at " + where_ + ": not connected", true);
    pg_result* r = l.exec(conn_, sql.c_str());
    ExecStatusType st = r ? l.result_status(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) raise("script failed", r);
    l.clear(r);
}

Transaction::Transaction(Connection& c) : c_(c) {
    if (c_.broken()) c_.reconnect();
    try {
        c_.exec("BEGIN");
    } catch (const Error& e) {
        if (!e.connection_lost) throw;
        c_.reconnect();
        c_.exec("BEGIN");
    }
}

Transaction::~Transaction() {
    if (done_ || c_.broken()) return;
    try {
        c_.exec("ROLLBACK");
    } catch (...) {
    }
}

void Transaction::commit() {
    c_.exec("COMMIT");
    done_ = true;
}

bool database_unavailable(const Error& e) {
    // No SQLSTATE: libpq could not reach the server, or the schema check said why (migrations.hpp).
    // Class 08: connection exception; 53: insufficient resources; 57: operator intervention
    // (admin shutdown, a statement timeout's query_canceled); 55: object not in prerequisite state.
    if (e.connection_lost || e.sqlstate.empty()) return true;
    std::string cls = e.sqlstate.substr(0, 2);
    return cls == "08" || cls == "53" || cls == "57" || cls == "55";
}

bool retryable(const Error& e) { return e.sqlstate == "40001" || e.sqlstate == "40P01"; }

}  // namespace agente::pg
