// The app side of the core/app boundary: a linked library implements App and make_app(). The core
// calls it in the master (shared memory, configuration, before any fork), in each HTTP worker
// (routes, start, exit) and in each dirty worker (job kinds, see dirty.hpp).
#pragma once

#include <agente/config.hpp>
#include <agente/dirty.hpp>
#include <agente/handler.hpp>
#include <agente/metrics.hpp>
#include <agente/shared.hpp>
#include <agente/status.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agente {

struct WorkerContext {
    // The worker's single-threaded io_context. Its reactor takes no locks (core/worker.cpp): from
    // another thread, only post() to it; never arm, cancel or destroy its timers or sockets there.
    asio::any_io_executor executor;
    const Config& config;
    int slot;                           // this worker's cells in every per-worker region
    DirtyClient* dirty = nullptr;       // calls the dirty pool's jobs; null when dirty_workers = 0
};

class App {
public:
    virtual ~App() = default;
    // Every process, first of all (the master before it creates the shared memory, each worker
    // before it maps it): declare the shared regions the app needs and keep the handles. They are
    // valid once mapped: in the master's hooks below, and in the worker from register_routes on.
    virtual void declare_shared(SharedLayout& layout) {}
    // Master, once per configuration (start and every reload), the shared memory mapped: validate
    // what workers will need, and set up shared cells for it. Also called by --check-config, with
    // no shared memory (handles not mapped).
    virtual void on_master_config(const Config& config) {}
    // Worker: register routes, then start per-worker state (like gunicorn's post_fork).
    virtual void register_routes(Router& router, WorkerContext& context) = 0;
    // Worker, for GET /metrics: the app's families after the core's, summed over every worker from
    // the app's shared regions (never this worker's figures alone).
    virtual void write_metrics(MetricsText& out) {}
    // Worker, for GET /status: nothing when `request` bears the admin token; else the refusal to
    // answer (401 without a token, 403 with a wrong one). An app that knows no admin refuses all.
    virtual std::optional<Response> refuse_admin(const Request& request) {
        return Response::error(403, "GET /status needs an admin token, and this app has none");
    }
    // Worker, for GET /status: the app's sections after the core's, read from the same shared
    // regions as write_metrics (never this worker's figures alone).
    virtual void write_status(StatusPage& page) {}
    // Worker, once its loop has stopped serving (like gunicorn's worker_exit).
    virtual void on_worker_exit() {}
    // Dirty worker, once at boot: register the job kinds HTTP workers may call (like gunicorn's
    // dirty app init). Blocking is fine here (load an index, open a database); what the handlers
    // capture lives as long as the process. A throw is a boot failure, retried with backoff.
    virtual void register_jobs(JobRegistry& jobs, const Config& config) {}
    // A command line with a word after the server's options (`agente-hibrido -c server.conf rag
    // search ...`, see split_command()): the operator's tools, run in this process instead of a
    // server, with the same configuration. `command` starts with the word. Returns the exit code, or
    // nullopt when the word is none of the app's commands. Blocking is fine; stdout is the command's.
    virtual std::optional<int> run_command(const std::vector<std::string>& command, const Config& config) {
        return std::nullopt;
    }
};

// Registers the app's server.conf sections (register_app_section) before the config is read.
void register_app_sections();
std::unique_ptr<App> make_app();

}  // namespace agente
