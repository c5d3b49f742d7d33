// The master's look at [cluster]'s servers when it starts. PostgreSQL: a database reached whose
// schema is behind this build refuses the start (run `db migrate` first), since every conversation
// would fail; a database not reached only warns, since the gateway serves without it and the agent
// answers 503 until it is back. Redis: a warning that this build does not use it yet.
#pragma once

#include "app/cluster/settings.hpp"

namespace agente::cluster {

// Throws std::runtime_error when the database answers and its schema cannot serve this build.
void check_cluster_at_start(const ClusterSettings& settings);

}  // namespace agente::cluster
