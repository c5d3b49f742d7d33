// The app side of the core/app boundary: a linked library implements App and make_app(). The core
// calls it in the master (shared state, before any fork), in each HTTP worker (routes, start, exit)
// and in each dirty worker (job kinds, see dirty.hpp).
#pragma once

#include <agente/config.hpp>
#include <agente/dirty.hpp>
#include <agente/handler.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agente {

// The app's part of the shared memory the master creates before forking: every worker maps the same
// bytes. Lay out only lock-free std::atomic members in it.
struct SharedArea {
    void* data = nullptr;
    std::size_t size = 0;
};

struct WorkerContext {
    asio::any_io_executor executor;     // the worker's single-threaded io_context
    const Config& config;
    SharedArea shared;
    int slot;                           // this worker's scoreboard slot, 0..max_slots-1
    int max_slots;
    DirtyClient* dirty = nullptr;       // calls the dirty pool's jobs; null when dirty_workers = 0
};

class App {
public:
    virtual ~App() = default;
    // Master, once per configuration (start and every reload): validate what workers will need.
    virtual void on_master_config(const Config& config) {}
    // Master, before the first fork: initialise the shared area (zeroed already).
    virtual void init_shared(SharedArea area) {}
    // Master, after a worker died: release what its slot held in the shared area (stream slots...).
    virtual void reclaim_slot(SharedArea area, int slot) {}
    // Worker: register routes, then start per-worker state (like gunicorn's post_fork).
    virtual void register_routes(Router& router, WorkerContext& context) = 0;
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

// Bytes of shared memory the app wants; the master reserves them in the scoreboard.
std::size_t app_shared_size();
// Registers the app's server.conf sections (register_app_section) before the config is read.
void register_app_sections();
std::unique_ptr<App> make_app();

}  // namespace agente
