// The app linked into the server: the agent's liveness page and the LLM gateway. This file only wires
// the parts together; each lives under src/app/gateway/ (the server.conf tables: sections.cpp).
#include <agente/app.hpp>

#include "app/agent/agent.hpp"
#include "app/agent/store_pool.hpp"
#include "app/cluster/cli.hpp"
#include "app/cluster/start_check.hpp"
#include "app/common/postgres.hpp"
#include "app/gateway/errors.hpp"
#include "app/gateway/gateway.hpp"
#include "app/rag/cli.hpp"
#include "app/rag/jobs.hpp"
#include "app/rag/rag_metrics.hpp"
#include "app/rag/routes.hpp"
#include "app/sections.hpp"

namespace agente {

namespace {

class AgentApp final : public App {
public:
    // The master checks the gateway's tables as a whole (a model naming an unknown provider, a
    // missing key) on every start and reload, and names the shared breaker cells.
    void on_master_config(const Config& config) override {
        // libpq, loaded by the checks below (the URL, the schema at start), is unloaded after them,
        // whatever they found: HTTP workers are forked from the master (core/spawn.hpp) and must not
        // carry it where no store runs.
        struct UnloadLibpq {
            ~UnloadLibpq() { pg::unload_library(); }
        } unload_libpq;
        auto tables = check_app_tables(config);
        // The schema at start only: a reload must not wait on the database, and workers check it
        // again with each connection they open.
        if (!started_) cluster::check_cluster_at_start(tables.cluster);
        started_ = true;
        if (shared_.breakers.mapped()) gateway::assign_breaker_cells(*shared_.breakers, tables.gateway);
        if (shared_.clients.names.mapped()) gateway::assign_client_cells(*shared_.clients.names, tables.gateway);
    }

    void declare_shared(SharedLayout& layout) override {
        shared_ = gateway::declare_shared_state(layout);
        rag_shared_ = rag::declare_rag_shared(layout);
    }

    // A dirty worker: the agent's conversation store runs here when there is a pool, and the RAG
    // engine (its index held once per dirty worker, never in an HTTP worker).
    void register_jobs(JobRegistry& jobs, const Config& config) override {
        agent::register_store_jobs(jobs, config);
        rag::register_rag_jobs(jobs, config, rag_shared_);
    }

    // The operators' tools: `agente-hibrido rag ingest|search` (rag/cli.hpp), `db migrate|status`
    // (cluster/cli.hpp).
    std::optional<int> run_command(const std::vector<std::string>& command, const Config& config) override {
        if (command.front() == "rag") return rag::run_rag_command(command, config);
        if (command.front() == "db") return cluster::run_db_command(command, config);
        return std::nullopt;
    }

    void register_routes(Router& router, WorkerContext& context) override {
        router.add("GET", "/", SyncHandler([](const Request&) {
            Response r;
            r.content_type = "text/plain; charset=utf-8";
            r.body = "Server is live";
            return r;
        }));
        rag_on_ = rag::rag_configured(*context.config.app);
        auto gw = gateway::make_gateway(context, shared_);  // one per worker: its upstream pool and breaker views
        gateway_ = gw;
        gateway::add_gateway_routes(router, gw);
        agent::add_agent_routes(router, context, gw);
        rag::add_rag_routes(router, context, gw);
    }

    void write_metrics(MetricsText& out) override {
        if (gateway_) gateway::write_gateway_metrics(*gateway_, out);
        if (rag_on_) {
            rag::write_rag_metrics(out, *rag_shared_.counters);
            rag::write_store_metrics(out, *rag_shared_.board);
        }
    }

    // /status takes the admin token as the breaker reset does (a Bearer header), or as the password
    // of HTTP Basic auth: a browser asks for it with its own prompt and never puts it in the address,
    // so that it stays out of the access log and the history (docs/operations.md).
    std::optional<Response> refuse_admin(const Request& request) override {
        if (!gateway_) return App::refuse_admin(request);
        auto shape = [](int status, std::string_view message) { return gateway::error_response(status, message); };
        std::string_view authorization = request.header("Authorization");
        std::optional<Response> refusal;
        if (std::string password = basic_password(authorization); !password.empty()) {
            refusal = gateway_->gate.refuse_admin(request, password, shape);
        } else {
            refusal = gateway_->gate.refuse_admin(request, shape);
        }
        if (refusal && refusal->status == 401)
            refusal->headers.push_back({"WWW-Authenticate", "Basic realm=\"agente-hibrido admin\", charset=\"UTF-8\""});
        return refusal;
    }

    void write_status(StatusPage& page) override {
        if (gateway_) gateway::write_gateway_status(*gateway_, page);
        if (rag_on_) rag::write_store_status(page, *rag_shared_.board);
    }

private:
    gateway::SharedState shared_;
    rag::RagShared rag_shared_;
    bool rag_on_ = false;                         // a [rag] table: its figures in /metrics and /status
    std::shared_ptr<gateway::Gateway> gateway_;   // this worker's
    bool started_ = false;
};

}  // namespace


std::unique_ptr<App> make_app() { return std::make_unique<AgentApp>(); }

}  // namespace agente
