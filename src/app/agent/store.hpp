// Conversation contexts and A2A tasks in SQLite, shared by every worker through one database file
// (each worker its own connection, WAL mode, a busy timeout), so a conversation goes on whichever
// worker takes its next request and survives a reload or a restart. Bounded: max_contexts (least
// recently used evicted, with their messages and tasks), max_messages and max_context_bytes per
// context (oldest dropped), max_tasks.
//
// ContextStore is synchronous and blocks on the disk: a worker's loop never calls it directly, only
// through StoreThread, which owns the connection on a thread of its own and posts completions back.
#pragma once

#include "app/agent/protocol.hpp"
#include "app/common/log_limit.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

struct sqlite3;

namespace agente::agent {

namespace asio = boost::asio;

struct StoreLimits {
    int max_contexts = 1000;
    int max_messages = 50;
    int max_tasks = 10000;
    std::chrono::milliseconds busy_timeout{2000};
    long max_context_bytes = 512 * 1024;   // of one context's stored messages (role and text)
};

struct StoredTask {
    std::string id;
    std::string context_id;
    std::string state;              // v0.3's names: submitted, working, completed, failed, canceled
    std::string reply;
    std::string updated;            // ISO 8601
    bool cancel_requested = false;  // another worker asked for a cancel; the owner acts on it
    std::string citations;          // a grounded task's citations as JSON text, for GetTask; "" for none
};

// What the agent keeps per conversation and task, wherever it lives: SQLite on one machine
// (ContextStore), PostgreSQL when [cluster] names one (PgContextStore, pg_store.hpp). Every call
// blocks and throws std::runtime_error when the store cannot answer.
class ConversationStore {
public:
    virtual ~ConversationStore() = default;
    // The context's messages, oldest first; marks it used.
    virtual std::vector<ChatMessage> history(const std::string& context_id) = 0;
    // Adds messages to the context, drops its oldest beyond max_messages or max_context_bytes (the
    // new ones too, when they alone are more), evicts the least recently used contexts beyond
    // max_contexts. One transaction.
    virtual void append(const std::string& context_id, const std::vector<ChatMessage>& messages) = 0;
    virtual void put_task(const StoredTask& task) = 0;
    virtual std::optional<StoredTask> get_task(const std::string& id) = 0;
    // Marks a task still submitted/working for cancellation; false when it is not (or is unknown).
    virtual bool request_cancel(const std::string& id) = 0;
    // Of `running`, the ids whose cancellation another worker requested.
    virtual std::vector<std::string> cancel_requests(const std::vector<std::string>& running) = 0;
};

// Opens a store (blocking); throws std::runtime_error saying why it cannot.
using StoreOpener = std::function<std::unique_ptr<ConversationStore>()>;

// The SQLite file at `path`, its directory created first.
StoreOpener sqlite_opener(std::string path, StoreLimits limits);
// Opening a database other workers are opening too may meet a lock the busy timeout does not cover:
// this many attempts per use.
constexpr int sqlite_open_attempts = 5;

class ContextStore final : public ConversationStore {
public:
    // Opens (creating) the database; throws std::runtime_error naming the file and SQLite's message.
    ContextStore(const std::string& path, StoreLimits limits);
    ~ContextStore();
    ContextStore(const ContextStore&) = delete;
    ContextStore& operator=(const ContextStore&) = delete;

    std::vector<ChatMessage> history(const std::string& context_id) override;
    void append(const std::string& context_id, const std::vector<ChatMessage>& messages) override;
    void put_task(const StoredTask& task) override;
    std::optional<StoredTask> get_task(const std::string& id) override;
    bool request_cancel(const std::string& id) override;
    std::vector<std::string> cancel_requests(const std::vector<std::string>& running) override;

    long context_count();
    long message_count(const std::string& context_id);
    long context_bytes(const std::string& context_id);
    long task_count();

private:
    void exec(const char* sql);
    void add_citations_column();
    void evict();

    sqlite3* db_ = nullptr;
    std::string path_;
    StoreLimits limits_;
};

// A store opened on first use (a server whose agent is never called creates no files and opens no
// connection), and again on a later use if that failed: several processes opening one new database
// at once contend for the switch to WAL, a PostgreSQL server may be down for a while, and a store
// that stayed closed would lose every turn. Blocks: used on a StoreThread's thread, or on a dirty
// worker's job threads (under a lock: one connection).
class LazyStore {
public:
    // `attempts` per use: SQLite's lock contention passes in moments; a PostgreSQL server that refused
    // a connection refuses the next one too, and each attempt may take its connect_timeout.
    explicit LazyStore(StoreOpener open, int attempts = sqlite_open_attempts) : open_(std::move(open)), attempts_(attempts) {}
    LazyStore(std::string path, StoreLimits limits) : LazyStore(sqlite_opener(std::move(path), limits)) {}
    // The open store; throws std::runtime_error("context store unavailable: ...") when it cannot be.
    ConversationStore& get();
    // The open store, or null (error() says why).
    ConversationStore* try_get();
    const std::string& error() const { return error_; }

private:
    StoreOpener open_;
    int attempts_;
    std::unique_ptr<ConversationStore> store_;
    std::string error_;
    // A server down fails each use: its error once per few, as the routes' (routes.cpp).
    app::LogLimit log_{5, std::chrono::seconds(10)};
};

// One thread per worker owning a ContextStore: jobs are queued to it, their results posted back to
// the awaiting coroutine's executor. The thread starts with the first job, and opening happens on it
// then (a slow disk never stalls the loop, and a worker whose agent is never called runs no second
// thread and creates no files: issue 17's one thread per HTTP worker); if it fails, every call
// throws the reason.
class StoreThread {
public:
    explicit StoreThread(StoreOpener open, int open_attempts = sqlite_open_attempts);
    StoreThread(std::string path, StoreLimits limits) : StoreThread(sqlite_opener(std::move(path), limits)) {}
    ~StoreThread();   // finishes the queued jobs, then joins
    StoreThread(const StoreThread&) = delete;
    StoreThread& operator=(const StoreThread&) = delete;

    // Runs fn(store) on the store's thread; resumes the caller on its own executor with the result
    // (or the exception fn threw). Not a coroutine itself: the job is handed straight to the
    // initiation (g++ 12 mishandles a by-value std::function parameter in a coroutine template).
    template <class R>
    asio::awaitable<R> call(std::function<R(ConversationStore&)> fn) {
        return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, R)>(
            Initiate<R>{this}, asio::use_awaitable, std::move(fn));
    }

    // Runs fn(store) on the store's thread with nobody waiting (errors are logged): for bookkeeping
    // from destructors, where nothing can be awaited.
    void post(std::function<void(ConversationStore&)> fn);

private:
    using Job = std::function<void(ConversationStore*, const std::string&)>;
    void submit(Job job);
    void run();

    template <class R>
    struct Initiate {
        StoreThread* self;
        template <class Handler>
        void operator()(Handler&& handler, std::function<R(ConversationStore&)> fn) const {
            auto ex = asio::get_associated_executor(handler);
            using H = std::decay_t<Handler>;
            auto h = std::make_shared<H>(std::forward<Handler>(handler));
            auto work = std::make_shared<asio::executor_work_guard<decltype(ex)>>(ex);
            auto job = std::make_shared<std::function<R(ConversationStore&)>>(std::move(fn));
            self->submit([h, work, job](ConversationStore* store, const std::string& open_error) mutable {
                std::exception_ptr ep;
                R r{};
                try {
                    if (!store) throw std::runtime_error("context store unavailable: " + open_error);
                    r = (*job)(*store);
                } catch (...) {
                    ep = std::current_exception();
                }
                job.reset();   // the job's captures die here; the handler only ever on its own loop
                auto ex = work->get_executor();
                asio::post(ex, [h = std::move(h), work = std::move(work), ep, r = std::move(r)]() mutable {
                    (*h)(ep, std::move(r));
                    work->reset();
                });
            });
        }
    };

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> jobs_;
    bool stopping_ = false;
    StoreOpener open_;     // moved to the thread when it starts
    int open_attempts_;
    std::thread thread_;   // started by the first submit()
};

}  // namespace agente::agent
