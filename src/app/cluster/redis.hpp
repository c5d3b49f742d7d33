// A Redis connection on a worker's loop, never blocking it: hiredis' asynchronous API speaks the
// protocol, and its event hooks (addRead/delRead/addWrite/delWrite/cleanup) are served by an
// asio::posix::stream_descriptor waiting on the socket in the worker's own io_context. The name is
// resolved by Asio first (hiredis would call getaddrinfo(), which blocks), and every call has a
// deadline: a Redis that does not answer in time is a connection closed, never a stalled worker.
//
// libhiredis is opened on first use rather than linked, as libpq is (common/postgres.hpp): only the
// workers of a server that names a Redis load it.
#pragma once

#include <agente/handler.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agente::cluster {

struct RedisReply {
    enum class Type { nil, integer, string, status, error, array } type = Type::nil;
    long long integer = 0;
    std::string text;                  // string, status or error
    std::vector<RedisReply> elements;  // array
};

// Where and how to log in, from [cluster] redis_url (already checked by the settings).
struct RedisAddress {
    std::string host;        // TCP: a name or an address
    std::string port = "6379";
    std::string unix_path;   // unix:///path: a local socket instead
    std::string user, password;
    int db = 0;
};
RedisAddress parse_redis_address(const std::string& url);

class RedisConnection {
public:
    // Connects, logs in (AUTH) and selects the database, within `timeout` for each step; null and
    // `why` set when it could not (the password never in it).
    static asio::awaitable<std::shared_ptr<RedisConnection>> open(asio::any_io_executor executor,
                                                                  const RedisAddress& address,
                                                                  std::chrono::milliseconds timeout, std::string& why);
    ~RedisConnection();
    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;

    // One command; its reply, or nullopt when the connection failed or the reply took longer than
    // the timeout (the connection is then closed: `why()` says which). An error reply is a reply.
    // `argv` is handed to hiredis before the first suspension (callers name it: no temporary in a
    // co_await expression, which g++ 12 miscompiles).
    asio::awaitable<std::optional<RedisReply>> call(const std::vector<std::string>& argv);
    // One command whose reply nobody waits for (a failure shows in the next call()).
    void send(const std::vector<std::string>& argv);

    bool alive() const;
    const std::string& why() const;
    void close(const std::string& why);

    struct Watcher;   // the hiredis context and the Asio side of its hooks (redis.cpp)

private:
    explicit RedisConnection(std::shared_ptr<Watcher> w) : w_(std::move(w)) {}
    std::shared_ptr<Watcher> w_;
};

}  // namespace agente::cluster
