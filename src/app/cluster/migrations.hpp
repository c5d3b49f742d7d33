// The PostgreSQL schema, as versioned migrations applied in order by `agente-hibrido db migrate`
// (cluster/cli.hpp) and checked by every process that opens a connection: a server never creates or
// changes tables by itself, so several machines and an older binary during a rolling upgrade never
// race to alter the schema under each other. A migration is never edited once released: a change is
// a new one.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace agente::pg { class Connection; }

namespace agente::cluster {

struct Migration {
    int version;
    std::string name;
    std::string sql;   // one script, run in the migration's transaction
};

// Every migration of this build, by version (1, 2, ...).
const std::vector<Migration>& migrations();

// The schema version this build needs: the last migration's.
int required_schema_version();

// Of `all`, those after `current` (0: a database never migrated), in order.
std::vector<Migration> pending_migrations(int current, const std::vector<Migration>& all);

// Why a database at `current` (nullopt: never migrated) cannot serve a build needing `required`, or
// nullopt when it can. A newer schema serves (an older binary during a rolling upgrade: migrations
// only add).
std::optional<std::string> schema_problem(std::optional<int> current, int required);

// The database's version (nullopt: never migrated). Blocks.
std::optional<int> schema_version(pg::Connection& c);

// Throws pg::Error (not a lost connection) with schema_problem()'s words when the schema cannot serve.
void check_schema(pg::Connection& c);

struct MigrationReport {
    int from = 0;
    int to = 0;
    std::vector<std::string> applied;   // "2 agent_tasks_cancel" ...
};

// Applies the pending migrations in one transaction, under an advisory lock: two hosts migrating at
// once apply each migration once; a failure leaves the schema as it was. Idempotent. Blocks.
MigrationReport migrate(pg::Connection& c);

}  // namespace agente::cluster
