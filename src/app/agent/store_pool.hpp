// The conversation store in the dirty pool: its operations as jobs ("agent.store.*", JSON in and
// out) that each dirty worker runs on its own connection to the one SQLite file, and the
// StoreAccess an HTTP worker calls them through.
#pragma once

#include "app/agent/store_access.hpp"

#include <agente/config.hpp>
#include <agente/dirty.hpp>

#include <memory>

namespace agente::agent {

// A dirty worker, at boot: the store's jobs. The database opens with the first job, not here (a
// server whose agent is never called creates no files; a store that cannot open fails each call
// rather than the worker's boot).
void register_store_jobs(JobRegistry& jobs, const Config& config);

std::unique_ptr<StoreAccess> make_pool_store(DirtyClient& dirty, asio::any_io_executor executor,
                                             const AgentSettings& settings);

}  // namespace agente::agent
