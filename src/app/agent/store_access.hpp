// How a worker's loop reaches the conversation store without ever blocking on it. With a dirty pool
// (dirty_workers > 0) the store lives in the dirty workers and each call is a job (store_pool.cpp):
// an HTTP worker then runs one thread. Without one, each worker keeps its own store thread
// (StoreThread), as before the pool existed.
#pragma once

#include "app/agent/settings.hpp"
#include "app/agent/store.hpp"

#include <agente/app.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agente::agent {

class StoreAccess {
public:
    virtual ~StoreAccess() = default;
    // Each throws std::runtime_error when the store cannot answer (unavailable, busy, failed).
    virtual asio::awaitable<std::vector<ChatMessage>> history(std::string context_id) = 0;
    virtual asio::awaitable<void> append(std::string context_id, std::vector<ChatMessage> messages) = 0;
    virtual asio::awaitable<void> put_task(StoredTask task) = 0;
    virtual asio::awaitable<std::optional<StoredTask>> get_task(std::string id) = 0;
    virtual asio::awaitable<bool> request_cancel(std::string id) = 0;
    virtual asio::awaitable<std::vector<std::string>> cancel_requests(std::vector<std::string> ids) = 0;
    // With nobody waiting (for bookkeeping from destructors); errors are logged.
    virtual void put_task_later(StoredTask task) = 0;
};

// The file of the store: settings.state_dir + "/agent-contexts.sqlite3".
std::string store_path(const AgentSettings& settings);
StoreLimits store_limits(const AgentSettings& settings);

// Where conversations live: PostgreSQL when [cluster] postgres_url names a server (one attempt per
// use: a server that refused a connection refuses the next), else the SQLite file.
struct StoreSource {
    StoreOpener open;
    int open_attempts;
};
StoreSource store_source(const Config& config, const AgentSettings& settings);

// The pool's when the worker has one (context.dirty), else a thread of the worker's own.
std::unique_ptr<StoreAccess> make_store_access(const WorkerContext& context, const AgentSettings& settings);

}  // namespace agente::agent
