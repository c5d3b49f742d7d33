#include "app/agent/store_access.hpp"

#include "app/agent/pg_store.hpp"
#include "app/agent/store_pool.hpp"
#include "app/cluster/settings.hpp"

#include <functional>

namespace agente::agent {

namespace {

// The store on a thread of this worker's own (no dirty pool).
class ThreadAccess final : public StoreAccess {
public:
    explicit ThreadAccess(StoreSource source) : thread_(std::move(source.open), source.open_attempts) {}

    asio::awaitable<std::vector<ChatMessage>> history(std::string context_id) override {
        std::function<std::vector<ChatMessage>(ConversationStore&)> job = [context_id](ConversationStore& c) {
            return c.history(context_id);
        };
        auto messages = co_await thread_.call(std::move(job));
        co_return messages;
    }

    asio::awaitable<void> append(std::string context_id, std::vector<ChatMessage> messages) override {
        std::function<bool(ConversationStore&)> job = [context_id, messages = std::move(messages)](ConversationStore& c) {
            c.append(context_id, messages);
            return true;
        };
        co_await thread_.call(std::move(job));
    }

    asio::awaitable<void> put_task(StoredTask task) override {
        std::function<bool(ConversationStore&)> job = [task = std::move(task)](ConversationStore& c) {
            c.put_task(task);
            return true;
        };
        co_await thread_.call(std::move(job));
    }

    asio::awaitable<std::optional<StoredTask>> get_task(std::string id) override {
        std::function<std::optional<StoredTask>(ConversationStore&)> job = [id](ConversationStore& c) { return c.get_task(id); };
        auto task = co_await thread_.call(std::move(job));
        co_return task;
    }

    asio::awaitable<bool> request_cancel(std::string id) override {
        std::function<bool(ConversationStore&)> job = [id](ConversationStore& c) { return c.request_cancel(id); };
        bool done = co_await thread_.call(std::move(job));
        co_return done;
    }

    asio::awaitable<std::vector<std::string>> cancel_requests(std::vector<std::string> ids) override {
        std::function<std::vector<std::string>(ConversationStore&)> job = [ids](ConversationStore& c) {
            return c.cancel_requests(ids);
        };
        auto wanted = co_await thread_.call(std::move(job));
        co_return wanted;
    }

    void put_task_later(StoredTask task) override {
        thread_.post([task = std::move(task)](ConversationStore& c) { c.put_task(task); });
    }

private:
    StoreThread thread_;
};

}  // namespace

std::string store_path(const AgentSettings& settings) {
    return state_directory(settings) + "/agent-contexts.sqlite3";
}

StoreLimits store_limits(const AgentSettings& s) {
    return {s.max_contexts, s.max_messages, s.max_tasks, s.busy_timeout, s.max_context_bytes};
}

StoreSource store_source(const Config& config, const AgentSettings& settings) {
    cluster::ClusterSettings cluster = cluster::worker_cluster_settings(config);
    if (cluster.uses_postgres()) return {postgres_opener(cluster, store_limits(settings)), 1};
    return {sqlite_opener(store_path(settings), store_limits(settings)), sqlite_open_attempts};
}

std::unique_ptr<StoreAccess> make_store_access(const WorkerContext& context, const AgentSettings& settings) {
    if (context.dirty) return make_pool_store(*context.dirty, context.executor, settings);
    return std::make_unique<ThreadAccess>(store_source(context.config, settings));
}

}  // namespace agente::agent
