// The operators' `db` command (`agente-hibrido [-c server.conf] db migrate|status`): the PostgreSQL
// schema of [cluster] postgres_url, brought to this build's version or shown. Run once per upgrade,
// from any one machine (or several: migrations take a lock and apply once), before the servers
// that need the new version start.
#pragma once

#include <agente/config.hpp>

#include <string>
#include <vector>

namespace agente::cluster {

// `command` starts with "db". Returns the exit code: 0 done (status: the schema serves this build),
// 1 failed (no PostgreSQL configured or reachable; status: the schema is behind), 2 a usage error.
int run_db_command(const std::vector<std::string>& command, const Config& config);

}  // namespace agente::cluster
