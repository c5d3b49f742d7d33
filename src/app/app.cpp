// The app linked into the server: the agent's liveness page and the LLM gateway. This file only wires
// the parts together; each lives under src/app/gateway/.
#include <agente/app.hpp>

#include "app/agent/agent.hpp"
#include "app/agent/store_pool.hpp"
#include "app/gateway/gateway.hpp"
#include "app/rag/cli.hpp"
#include "app/rag/settings.hpp"

#include <toml++/toml.h>

namespace agente {

namespace {

class AgentApp final : public App {
public:
    // The master checks the gateway's tables as a whole (a model naming an unknown provider, a
    // missing key) on every start and reload, and names the shared breaker cells.
    void on_master_config(const Config& config) override {
        auto settings = gateway::load_gateway_settings(*config.app, config.app_source);
        rag::load_rag_settings(*config.app, config.app_source);   // [rag] embedding_model names a model
        for (auto& p : settings.providers) p.api_key.clear();   // the master never needs the keys
        settings.api_keys.clear();
        settings.admin_token.clear();
        settings_ = std::move(settings);
        gateway::assign_breaker_cells(area_, settings_);
    }

    void init_shared(SharedArea area) override {
        area_ = area;
        gateway::assign_breaker_cells(area_, settings_);
    }

    void reclaim_slot(SharedArea area, int slot) override { gateway::reclaim_worker_streams(area, slot); }

    // A dirty worker: the agent's conversation store runs here when there is a pool.
    void register_jobs(JobRegistry& jobs, const Config& config) override { agent::register_store_jobs(jobs, config); }

    // The operators' tools: `agente-hibrido rag ingest|search` (rag/cli.hpp).
    std::optional<int> run_command(const std::vector<std::string>& command, const Config& config) override {
        if (command.front() == "rag") return rag::run_rag_command(command, config);
        return std::nullopt;
    }

    void register_routes(Router& router, WorkerContext& context) override {
        router.add("GET", "/", SyncHandler([](const Request&) {
            Response r;
            r.content_type = "text/plain; charset=utf-8";
            r.body = "Server is live";
            return r;
        }));
        auto gw = gateway::make_gateway(context);  // one per worker: its upstream pool and breaker views
        gateway::add_gateway_routes(router, gw);
        agent::add_agent_routes(router, context, gw);
    }

private:
    gateway::GatewaySettings settings_;
    SharedArea area_;
};

}  // namespace

std::size_t app_shared_size() { return gateway::shared_state_size(); }

void register_app_sections() {
    register_app_section({"gateway", gateway::validate_gateway_section});
    register_app_section({"providers", gateway::validate_providers_section});
    register_app_section({"models", gateway::validate_models_section});
    register_app_section({"agent", agent::validate_agent_section});
    register_app_section({"agents", agent::validate_agents_section});
    register_app_section({"rag", rag::validate_rag_section});
}

std::unique_ptr<App> make_app() { return std::make_unique<AgentApp>(); }

}  // namespace agente
