// The [cluster] table of server.conf: the shared servers several machines running agente-hibrido use
// (docs/configuration.md, "Cluster"). Without it nothing changes: SQLite and each machine's shared
// memory, as on one machine. Errors name server.conf's file:line, never a URL's password.
#pragma once

#include <chrono>
#include <string>

namespace toml { inline namespace v3 { class table; } }

namespace agente { struct Config; }

namespace agente::cluster {

struct ClusterSettings {
    // libpq's URL form (postgresql://user:password@host:port/dbname?sslmode=...); "": conversations
    // and A2A tasks stay in SQLite under [agent] state_dir.
    std::string postgres_url;
    // redis://[user:password@]host:port/db or unix:///path?db=N; "": the breakers and the stream limit
    // stay each machine's own. With it they are shared by every machine using that Redis
    // (cluster/redis_link.hpp).
    std::string redis_url;
    // A Redis call that takes longer than this counts as Redis down: the machine falls back to its
    // share of the stream limit until a new connection answers.
    std::chrono::milliseconds redis_timeout{500};
    // The streams open at once over every machine sharing the Redis; 0: not shared (each machine
    // keeps its own [gateway] max_concurrent_streams, which also caps it under this one).
    int max_concurrent_streams = 0;
    // A stream's lease in Redis: renewed while the stream lives, gone this long after a machine
    // died (or lost Redis) without giving it back.
    std::chrono::milliseconds stream_lease{10000};
    // libpq's connect_timeout: a whole connection attempt, DNS and TLS included (libpq's minimum is 2).
    std::chrono::seconds postgres_connect_timeout{5};
    // Each statement (PostgreSQL's statement_timeout), and how long a dead server's unacknowledged
    // data may wait (tcp_user_timeout): what a request waiting on the database may lose to it.
    std::chrono::milliseconds postgres_statement_timeout{5000};

    // A worker that could not read what the master accepted (a credential file removed since): the
    // reason, and every call that needs the database fails with it rather than fall back to SQLite.
    std::string error;

    bool uses_postgres() const { return !postgres_url.empty() || !error.empty(); }
};

// Section validator for register_app_section(): throws ConfigError(file, line, ...).
void validate_cluster_section(const toml::table& section, const std::string& file);

// [cluster] from the app tables (absent: the defaults), secrets read from the environment or files.
ClusterSettings load_cluster_settings(const toml::table& app, const std::string& file);

// A worker's (or a command's) settings from the configuration the master accepted.
ClusterSettings worker_cluster_settings(const Config& config);
// The same for an HTTP worker's Redis link: without libpq's check of postgres_url, which would load
// libpq into a process that never talks to PostgreSQL (common/postgres.hpp says why that matters).
ClusterSettings worker_redis_settings(const Config& config);

// The URL with its password replaced by "***": for logs and errors.
std::string redacted_url(const std::string& url);

}  // namespace agente::cluster
