#include "app/cluster/start_check.hpp"

#include "app/cluster/migrations.hpp"
#include "app/common/postgres.hpp"

#include <spdlog/spdlog.h>

namespace agente::cluster {

void check_cluster_at_start(const ClusterSettings& settings) {
    // Redis is reached by each worker on its own loop (redis_link.hpp): a master waiting on it would
    // hold the start for nothing, and a Redis down at start is a fallback, not an error.
    if (!settings.redis_url.empty())
        spdlog::info("cluster: breakers and stream limit shared through Redis at {}", redacted_url(settings.redis_url));
    if (!settings.uses_postgres()) return;
    pg::Options options;
    options.connect_timeout = settings.postgres_connect_timeout;
    options.statement_timeout = settings.postgres_statement_timeout;
    options.application_name = "agente-hibrido master";
    try {
        pg::Connection c(settings.postgres_url, options);
        std::optional<int> version = schema_version(c);
        if (auto problem = schema_problem(version, required_schema_version()))
            throw std::runtime_error("cluster: " + c.where() + ": " + *problem);
        spdlog::info("cluster: conversations and RAG stores in PostgreSQL at {} (schema version {})", c.where(), *version);
    } catch (const pg::Error& e) {
        spdlog::warn("cluster: {}; the agent answers 503 until it can reach it, and so do the RAG endpoints", e.what());
    }
}

}  // namespace agente::cluster
