#include "app/agent/store_pool.hpp"

#include "app/json_text.hpp"

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include <mutex>

namespace agente::agent {

namespace {

// A store call waits in the pool's queue and then for SQLite's lock (busy_timeout): this much more
// than busy_timeout bounds it.
constexpr std::chrono::milliseconds queue_allowance{3000};

namespace kind {
constexpr const char* history = "agent.store.history";
constexpr const char* append = "agent.store.append";
constexpr const char* put_task = "agent.store.put_task";
constexpr const char* get_task = "agent.store.get_task";
constexpr const char* request_cancel = "agent.store.request_cancel";
constexpr const char* cancel_requests = "agent.store.cancel_requests";
}  // namespace kind

// ---- the payloads, both ends ------------------------------------------------------------------

json messages_json(const std::vector<ChatMessage>& messages) {
    json out = json::array();
    for (const auto& m : messages) out.push_back({{"role", m.role}, {"content", m.content}});
    return out;
}

std::vector<ChatMessage> messages_of(const json& j) {
    std::vector<ChatMessage> out;
    for (const auto& m : j) out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
    return out;
}

json task_json(const StoredTask& t) {
    return {{"id", t.id}, {"context_id", t.context_id}, {"state", t.state}, {"reply", t.reply},
            {"updated", t.updated}, {"cancel_requested", t.cancel_requested}, {"citations", t.citations}};
}

StoredTask task_of(const json& j) {
    return {j.at("id").get<std::string>(), j.at("context_id").get<std::string>(), j.at("state").get<std::string>(),
            j.at("reply").get<std::string>(), j.at("updated").get<std::string>(), j.at("cancel_requested").get<bool>(),
            j.value("citations", std::string())};
}

std::string text(const json& j) { return json_text(j); }

// Requests, built outside the coroutines (g++ 12 miscompiles braced lists in coroutine bodies).
std::string by_context(const std::string& context_id) { return text(json{{"context_id", context_id}}); }
std::string by_id(const std::string& id) { return text(json{{"id", id}}); }
std::string turn(const std::string& context_id, const std::vector<ChatMessage>& messages) {
    return text(json{{"context_id", context_id}, {"messages", messages_json(messages)}});
}
std::string of_ids(const std::vector<std::string>& ids) { return text(json{{"ids", ids}}); }

// ---- the dirty worker's side ------------------------------------------------------------------

// One connection per dirty worker, shared by its job threads one at a time (SQLite connections are
// opened without their own mutex, and a libpq connection serves one call at a time); other dirty
// workers have theirs, and WAL plus the busy timeout (or PostgreSQL) order them.
class SharedStore {
public:
    explicit SharedStore(StoreSource source) : store_(std::move(source.open), source.open_attempts) {}

    template <class F>
    std::string with(F f) {
        std::lock_guard lock(mutex_);
        return text(f(store_.get()));
    }

private:
    std::mutex mutex_;
    LazyStore store_;
};

// ---- the HTTP worker's side -------------------------------------------------------------------

class PoolAccess final : public StoreAccess {
public:
    PoolAccess(DirtyClient& dirty, asio::any_io_executor executor, std::chrono::milliseconds deadline)
        : dirty_(dirty), executor_(std::move(executor)), deadline_(deadline) {}

    asio::awaitable<std::vector<ChatMessage>> history(std::string context_id) override {
        std::string payload = by_context(context_id);
        json reply = co_await run(kind::history, std::move(payload));
        co_return messages_of(reply);
    }

    asio::awaitable<void> append(std::string context_id, std::vector<ChatMessage> messages) override {
        std::string payload = turn(context_id, messages);
        co_await run(kind::append, std::move(payload));
    }

    asio::awaitable<void> put_task(StoredTask task) override {
        std::string payload = text(task_json(task));
        co_await run(kind::put_task, std::move(payload));
    }

    asio::awaitable<std::optional<StoredTask>> get_task(std::string id) override {
        std::string payload = by_id(id);
        json reply = co_await run(kind::get_task, std::move(payload));
        std::optional<StoredTask> task;
        if (!reply.is_null()) task = task_of(reply);
        co_return task;
    }

    asio::awaitable<bool> request_cancel(std::string id) override {
        std::string payload = by_id(id);
        json reply = co_await run(kind::request_cancel, std::move(payload));
        co_return reply.get<bool>();
    }

    asio::awaitable<std::vector<std::string>> cancel_requests(std::vector<std::string> ids) override {
        std::string payload = of_ids(ids);
        json reply = co_await run(kind::cancel_requests, std::move(payload));
        co_return reply.get<std::vector<std::string>>();
    }

    // Runs on the worker's loop with nobody waiting; the task holds this object's client, which
    // lives as long as the worker.
    void put_task_later(StoredTask task) override {
        asio::co_spawn(executor_, put_task(std::move(task)), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("agent: saving task: {}", ex.what());
            }
        });
    }

private:
    // The job's JSON answer; any failure of the call (the pool busy, the store's own error) throws.
    asio::awaitable<json> run(const char* job, std::string payload) {
        std::string_view kind = job;
        DirtyResult r = co_await dirty_.call(kind, std::move(payload), deadline_);
        if (!r.ok())
            throw std::runtime_error(std::string(job) + ": " + std::string(to_string(r.error)) + ": " + r.message);
        co_return json::parse(r.value);
    }

    DirtyClient& dirty_;
    asio::any_io_executor executor_;
    std::chrono::milliseconds deadline_;
};

}  // namespace

void register_store_jobs(JobRegistry& jobs, const Config& config) {
    AgentSettings settings = worker_agent_settings(config);
    auto store = std::make_shared<SharedStore>(store_source(config, settings));
    JobOptions idempotent;   // reads, upserts and flags: running one twice changes nothing
    idempotent.idempotent = true;
    jobs.add(kind::history, [store](JobContext& job) {
        json in = json::parse(job.payload());
        return store->with([&](ConversationStore& c) { return messages_json(c.history(in.at("context_id"))); });
    }, idempotent);
    // Not idempotent: run twice, it would store the turn twice.
    jobs.add(kind::append, [store](JobContext& job) {
        json in = json::parse(job.payload());
        return store->with([&](ConversationStore& c) {
            c.append(in.at("context_id"), messages_of(in.at("messages")));
            return json(nullptr);
        });
    });
    jobs.add(kind::put_task, [store](JobContext& job) {
        StoredTask task = task_of(json::parse(job.payload()));
        return store->with([&](ConversationStore& c) {
            c.put_task(task);
            return json(nullptr);
        });
    }, idempotent);
    jobs.add(kind::get_task, [store](JobContext& job) {
        json in = json::parse(job.payload());
        return store->with([&](ConversationStore& c) {
            auto task = c.get_task(in.at("id"));
            return task ? task_json(*task) : json(nullptr);
        });
    }, idempotent);
    jobs.add(kind::request_cancel, [store](JobContext& job) {
        json in = json::parse(job.payload());
        return store->with([&](ConversationStore& c) { return json(c.request_cancel(in.at("id"))); });
    }, idempotent);
    jobs.add(kind::cancel_requests, [store](JobContext& job) {
        json in = json::parse(job.payload());
        return store->with([&](ConversationStore& c) {
            return json(c.cancel_requests(in.at("ids").get<std::vector<std::string>>()));
        });
    }, idempotent);
}

std::unique_ptr<StoreAccess> make_pool_store(DirtyClient& dirty, asio::any_io_executor executor,
                                             const AgentSettings& settings) {
    return std::make_unique<PoolAccess>(dirty, std::move(executor), settings.busy_timeout + queue_allowance);
}

}  // namespace agente::agent
