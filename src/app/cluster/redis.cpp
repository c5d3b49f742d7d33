// hiredis on the worker's io_context: the adapter is the five hooks below, each arming (or not
// re-arming) one async_wait on the socket; when it fires, hiredis reads or writes and runs the
// callbacks of the replies that arrived. Replies complete a timer the calling coroutine waits on,
// so the coroutine resumes from the loop, never from inside hiredis.
#include "app/cluster/redis.hpp"

#include "app/common/dynamic_library.hpp"

#include <hiredis/async.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>

#include <charconv>
#include <memory>

namespace agente::cluster {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Debian's libhiredis0.14; libhiredis-dev's libhiredis.so is only a link to it.
constexpr const char* soname = "libhiredis.so.0.14";

struct Library {
    decltype(&::redisAsyncConnect) connect = nullptr;
    decltype(&::redisAsyncConnectUnix) connect_unix = nullptr;
    decltype(&::redisAsyncSetConnectCallback) set_connect_callback = nullptr;
    decltype(&::redisAsyncHandleRead) handle_read = nullptr;
    decltype(&::redisAsyncHandleWrite) handle_write = nullptr;
    decltype(&::redisAsyncCommandArgv) command_argv = nullptr;
    decltype(&::redisAsyncFree) free = nullptr;
    std::string error;
};

Library open_library() {
    Library l;
    app::DynamicLibrary library(soname);
    library.find("redisAsyncConnect", l.connect);
    library.find("redisAsyncConnectUnix", l.connect_unix);
    library.find("redisAsyncSetConnectCallback", l.set_connect_callback);
    library.find("redisAsyncHandleRead", l.handle_read);
    library.find("redisAsyncHandleWrite", l.handle_write);
    library.find("redisAsyncCommandArgv", l.command_argv);
    library.find("redisAsyncFree", l.free);
    l.error = library.error();
    return l;   // never closed: connections live as long as the process
}

const Library* hiredis(std::string& why) {
    static const Library library = open_library();
    if (!library.error.empty()) {
        why = library.error;
        return nullptr;
    }
    return &library;
}

// A call (or the connection) waited for: the reply completes the timer early.
struct Pending {
    explicit Pending(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    bool done = false;
    std::optional<RedisReply> reply;
};

RedisReply convert(const redisReply* r) {
    RedisReply out;
    switch (r->type) {
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::integer; out.integer = r->integer; break;
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::string; out.text.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::status; out.text.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::error; out.text.assign(r->str, r->len); break;
    case REDIS_REPLY_ARRAY:
        out.type = RedisReply::Type::array;
        for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
        break;
    default: break;   // nil
    }
    return out;
}

std::string millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

struct RedisConnection::Watcher : std::enable_shared_from_this<Watcher> {
    Watcher(const asio::any_io_executor& ex, std::chrono::milliseconds timeout, const Library& lib)
        : socket(ex), timeout(timeout), lib(lib) {}

    asio::posix::stream_descriptor socket;   // hiredis' descriptor: released, never closed, by Asio
    std::chrono::milliseconds timeout;
    const Library& lib;
    redisAsyncContext* ac = nullptr;         // null once hiredis has freed it
    bool reading = false, writing = false;   // what hiredis asked for
    bool read_armed = false, write_armed = false;   // an async_wait is pending
    std::shared_ptr<Pending> connecting;
    std::string why;

    // One wait at a time per direction; a hook that asks again while one is pending changes nothing,
    // and a wait that completes after hiredis stopped wanting it is dropped.
    static void arm(const std::shared_ptr<Watcher>& w, bool read) {
        bool& armed = read ? w->read_armed : w->write_armed;
        if (armed || !w->ac) return;
        armed = true;
        auto what = read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write;
        w->socket.async_wait(what, [w, read](boost::system::error_code ec) {
            (read ? w->read_armed : w->write_armed) = false;
            if (ec == asio::error::operation_aborted || !w->ac) return;
            if (!(read ? w->reading : w->writing)) return;
            // An error on the socket is hiredis' to find (it reads, fails, and disconnects).
            if (read) w->lib.handle_read(w->ac);
            else w->lib.handle_write(w->ac);
            if (w->ac && (read ? w->reading : w->writing)) arm(w, read);
        });
    }

    static Watcher& of(void* data) { return *static_cast<Watcher*>(data); }
    static void add_read(void* data) {
        of(data).reading = true;
        arm(of(data).shared_from_this(), true);
    }
    static void del_read(void* data) { of(data).reading = false; }
    static void add_write(void* data) {
        of(data).writing = true;
        arm(of(data).shared_from_this(), false);
    }
    static void del_write(void* data) { of(data).writing = false; }
    // hiredis frees the context (after an error, or redisAsyncFree): it closes the descriptor itself.
    static void cleanup(void* data) {
        Watcher& w = of(data);
        if (w.why.empty()) w.why = w.ac && w.ac->c.errstr[0] ? w.ac->c.errstr : "connection closed";
        w.ac = nullptr;
        w.reading = w.writing = false;
        if (w.socket.is_open()) w.socket.release();
    }

    static void on_connect(const redisAsyncContext* ac, int status) {
        Watcher& w = of(ac->data);
        std::shared_ptr<Pending> p = std::move(w.connecting);
        if (status != REDIS_OK) w.why = ac->errstr ? ac->errstr : "connection failed";
        if (!p || p->done) return;
        p->done = true;
        if (status == REDIS_OK) p->reply = RedisReply{RedisReply::Type::status, 0, "connected", {}};
        p->timer.cancel();
    }

    static void on_reply(redisAsyncContext*, void* reply, void* privdata) {
        auto* slot = static_cast<std::shared_ptr<Pending>*>(privdata);
        std::shared_ptr<Pending> p = std::move(*slot);
        delete slot;
        if (p->done) return;   // timed out already
        p->done = true;
        if (reply) p->reply = convert(static_cast<redisReply*>(reply));   // null: the connection went
        p->timer.cancel();
    }

    // Hands a command to hiredis (which writes it when the socket is writable); false when the
    // connection is gone.
    bool submit(const std::vector<std::string>& argv, std::shared_ptr<Pending>* slot) {
        if (!ac) {
            delete slot;
            return false;
        }
        std::vector<const char*> args;
        std::vector<std::size_t> lengths;
        for (const auto& a : argv) {
            args.push_back(a.data());
            lengths.push_back(a.size());
        }
        redisCallbackFn* fn = nullptr;
        if (slot) fn = on_reply;
        if (lib.command_argv(ac, fn, slot, int(argv.size()), args.data(), lengths.data()) != REDIS_OK) {
            delete slot;
            return false;
        }
        return true;
    }

    void close(const std::string& reason) {
        if (why.empty()) why = reason;
        // Runs the callbacks still waiting (with no reply), then cleanup().
        if (ac) lib.free(ac);
    }
};

RedisAddress parse_redis_address(const std::string& url) {
    RedisAddress a;
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) return a;
    const boost::urls::url_view& u = *parsed;
    std::string db;
    if (u.scheme() == "unix") {
        a.unix_path = std::string(u.path());
        auto it = u.params().find("db");
        if (it != u.params().end()) db = std::string((*it).value);
    } else {
        a.host = std::string(u.host_address());
        if (u.has_port()) a.port = std::string(u.port());
        std::string path(u.path());
        if (path.size() > 1) db = path.substr(1);
    }
    if (u.has_userinfo()) {
        a.user = std::string(u.user());
        a.password = std::string(u.password());
    }
    if (!db.empty()) std::from_chars(db.data(), db.data() + db.size(), a.db);
    return a;
}

asio::awaitable<std::shared_ptr<RedisConnection>> RedisConnection::open(asio::any_io_executor ex,
                                                                        const RedisAddress& address,
                                                                        std::chrono::milliseconds timeout,
                                                                        std::string& why) {
    const Library* lib = hiredis(why);
    if (!lib) co_return nullptr;
    redisAsyncContext* ac = nullptr;
    if (address.unix_path.empty()) {
        // Asio resolves on its own thread; the timer bounds a resolver that does not answer. The
        // timer's handler shares the resolver: when the timer expires in the loop turn the answer
        // comes in, cancel() is too late to stop the handler, which then runs after this block.
        auto resolver = std::make_shared<asio::ip::tcp::resolver>(ex);
        asio::steady_timer guard(ex);
        guard.expires_after(timeout);
        guard.async_wait([resolver](boost::system::error_code ec) {
            if (!ec) resolver->cancel();
        });
        auto [ec, found] = co_await resolver->async_resolve(address.host, address.port, use_tuple);
        guard.cancel();
        if (ec || found.empty()) {
            why = "cannot resolve " + address.host + ": " + ec.message();
            co_return nullptr;
        }
        auto endpoint = found.begin()->endpoint();
        std::string ip = endpoint.address().to_string();
        ac = lib->connect(ip.c_str(), endpoint.port());
    } else {
        ac = lib->connect_unix(address.unix_path.c_str());
    }
    if (!ac) {
        why = "cannot allocate a Redis context";
        co_return nullptr;
    }
    if (ac->err) {
        why = ac->errstr;
        lib->free(ac);
        co_return nullptr;
    }
    auto w = std::make_shared<Watcher>(ex, timeout, *lib);
    boost::system::error_code assigned;
    w->socket.assign(ac->c.fd, assigned);
    if (assigned) {
        why = "cannot watch the Redis socket: " + assigned.message();
        lib->free(ac);
        co_return nullptr;
    }
    w->ac = ac;
    ac->data = w.get();
    ac->ev.data = w.get();
    ac->ev.addRead = Watcher::add_read;
    ac->ev.delRead = Watcher::del_read;
    ac->ev.addWrite = Watcher::add_write;
    ac->ev.delWrite = Watcher::del_write;
    ac->ev.cleanup = Watcher::cleanup;
    auto connecting = std::make_shared<Pending>(ex);
    connecting->timer.expires_after(timeout);
    w->connecting = connecting;
    lib->set_connect_callback(ac, Watcher::on_connect);   // asks for a write event: the connect's end
    co_await connecting->timer.async_wait(use_tuple);
    std::shared_ptr<RedisConnection> c(new RedisConnection(w));
    if (!connecting->reply) {
        connecting->done = true;
        c->close("no connection within " + millis(timeout));
        why = w->why;
        co_return nullptr;
    }
    std::vector<std::vector<std::string>> login;
    if (!address.password.empty()) {
        if (address.user.empty()) login.push_back({"AUTH", address.password});
        else login.push_back({"AUTH", address.user, address.password});
    }
    if (address.db != 0) login.push_back({"SELECT", std::to_string(address.db)});
    for (auto& command : login) {
        std::optional<RedisReply> r = co_await c->call(command);
        if (!r || r->type == RedisReply::Type::error) {
            // The command's name only: AUTH's arguments are the credentials.
            std::string reason = command[0] + " refused: ";
            if (r) reason += r->text;
            else reason += c->why();
            c->close(reason);
            why = reason;
            co_return nullptr;
        }
    }
    co_return c;
}

RedisConnection::~RedisConnection() { w_->close("closed"); }

asio::awaitable<std::optional<RedisReply>> RedisConnection::call(const std::vector<std::string>& argv) {
    std::shared_ptr<Watcher> w = w_;   // the connection may be dropped by its owner meanwhile
    auto p = std::make_shared<Pending>(w->socket.get_executor());
    p->timer.expires_after(w->timeout);
    if (!w->submit(argv, new std::shared_ptr<Pending>(p))) {
        if (w->why.empty()) w->why = "connection lost";
        co_return std::nullopt;
    }
    co_await p->timer.async_wait(use_tuple);
    if (!p->done) {
        p->done = true;
        w->close("no reply within " + millis(w->timeout));
        co_return std::nullopt;
    }
    if (!p->reply && w->why.empty()) w->why = "connection lost";
    co_return std::move(p->reply);
}

void RedisConnection::send(const std::vector<std::string>& argv) { w_->submit(argv, nullptr); }

bool RedisConnection::alive() const { return w_->ac != nullptr; }

const std::string& RedisConnection::why() const { return w_->why; }

void RedisConnection::close(const std::string& why) { w_->close(why); }

}  // namespace agente::cluster
