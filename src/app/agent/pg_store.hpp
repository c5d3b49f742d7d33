// The conversation store in PostgreSQL, when [cluster] postgres_url names a server: the same
// operations and bounds as the SQLite store (store.hpp), so a conversation goes on through whichever
// machine takes its next request. Runs where the SQLite store does (a StoreThread or a dirty worker),
// never on a worker's loop: every call blocks on the network.
#pragma once

#include "app/agent/store.hpp"
#include "app/cluster/settings.hpp"
#include "app/common/postgres.hpp"

namespace agente::agent {

class PgContextStore final : public ConversationStore {
public:
    // Connects and checks the schema (cluster/migrations.hpp); throws pg::Error saying why not.
    PgContextStore(const std::string& url, const pg::Options& options, StoreLimits limits);

    std::vector<ChatMessage> history(const std::string& context_id) override;
    void append(const std::string& context_id, const std::vector<ChatMessage>& messages) override;
    void put_task(const StoredTask& task) override;
    std::optional<StoredTask> get_task(const std::string& id) override;
    bool request_cancel(const std::string& id) override;
    std::vector<std::string> cancel_requests(const std::vector<std::string>& running) override;

private:
    void evict();

    pg::Connection c_;
    StoreLimits limits_;
};

// Opens a PgContextStore; with settings.error (what the master accepted could not be read here),
// every open fails with it.
StoreOpener postgres_opener(const cluster::ClusterSettings& settings, StoreLimits limits);

}  // namespace agente::agent
