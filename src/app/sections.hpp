// The app's server.conf tables, apart from the app itself: their registration and the master's check
// of them as a whole. Apart so that a tool which reads server.conf as the server does (the fuzz target
// tests/fuzz/config.cpp) links these and the settings files, not every route, store and engine.
#pragma once

#include <agente/config.hpp>

#include "app/cluster/settings.hpp"
#include "app/gateway/settings.hpp"

namespace agente {

// What the master keeps of the app's tables.
struct AppTables {
    gateway::GatewaySettings gateway;   // without the secrets
    cluster::ClusterSettings cluster;
};

// The master's check of the app's tables as a whole, on every start and reload (a model naming an
// unknown provider, a missing key, [rag] embedding_model naming no model, [cluster]'s URLs):
// ConfigError names file:line. Reads nothing but the configuration (no database, no network).
AppTables check_app_tables(const Config& config);

}  // namespace agente
