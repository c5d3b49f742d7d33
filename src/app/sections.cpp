#include "app/sections.hpp"

#include <agente/app.hpp>

#include "app/agent/settings.hpp"
#include "app/rag/settings.hpp"

#include <toml++/toml.h>

namespace agente {

void register_app_sections() {
    register_app_section({"gateway", gateway::validate_gateway_section});
    register_app_section({"providers", gateway::validate_providers_section});
    register_app_section({"models", gateway::validate_models_section});
    register_app_section({"agent", agent::validate_agent_section});
    register_app_section({"agents", agent::validate_agents_section});
    register_app_section({"rag", rag::validate_rag_section});
    register_app_section({"cluster", cluster::validate_cluster_section});
}

AppTables check_app_tables(const Config& config) {
    AppTables tables;
    tables.gateway = gateway::load_gateway_settings(*config.app, config.app_source);
    rag::load_rag_settings(*config.app, config.app_source);
    tables.cluster = cluster::load_cluster_settings(*config.app, config.app_source);
    for (auto& p : tables.gateway.providers) p.api_key.clear();   // the master never needs the keys
    for (auto& c : tables.gateway.clients) c.key.clear();
    tables.gateway.admin_token.clear();
    return tables;
}

}  // namespace agente
