// agente-hibrido: the same binary is the master (started by the operator or systemd) and every
// worker, HTTP or dirty (exec'd by the master with AGENTE_WORKER_* in its environment once the
// binary changed; while it has not, forked instead, and run_master returns as that worker).
#include "core/dirty_worker.hpp"
#include "core/log.hpp"
#include "core/master.hpp"
#include "core/proc_title.hpp"
#include "core/tls.hpp"
#include "core/worker.hpp"

#include <agente/app.hpp>
#include <agente/config.hpp>

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <optional>
#include <stdlib.h>
#include <iostream>

using namespace agente;

namespace {

int print_and_exit(const LoadedConfig& loaded) {
    switch (loaded.action) {
        case Action::version: std::cout << "agente-hibrido (version " << AGENTE_VERSION << ")\n"; return 0;
        case Action::help: std::cout << usage_text(); return 0;
        case Action::print_config: std::cout << print_config(loaded.config); return 0;
        case Action::check_config:
            make_app()->on_master_config(loaded.config);
            core::read_tls_files(loaded.config);  // the files as the master reads them at start
            return 0;
        case Action::serve: break;
    }
    return 0;
}

// An app command (`agente-hibrido [-c server.conf] rag ingest ...`): the server's configuration is
// read as for a start (file, AGENTE_HIBRIDO_CMD_ARGS, options), so the command sees the same app
// tables and state directory, and the app runs it in this process. Exit 2: no such command.
int run_app_command(const CommandLine& command_line, const std::string& env_args) {
    LoadedConfig loaded;
    try {
        loaded = load_config(command_line.server_args, env_args);
        if (loaded.action != Action::serve) return print_and_exit(loaded);
    } catch (const std::exception& e) {
        std::cerr << "Error: " << e.what() << "\n";
        return 1;
    }
    std::optional<int> code = make_app()->run_command(command_line.command, loaded.config);
    if (code) return *code;
    std::cerr << "Error: unknown command \"" << command_line.command.front()
              << "\" (the server takes options only; see --help)\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    core::init_proc_title(argc, argv);
    std::vector<std::string> args(argv, argv + argc);
    const char* env_args = std::getenv("AGENTE_HIBRIDO_CMD_ARGS");
    register_app_sections();
    std::vector<std::string> rest(args.begin() + 1, args.end());
    // A worker reads the master's validated copy of the file, under the file's own name (its
    // messages name it, and secrets relative to it are found beside it).
    if (const char* snapshot = std::getenv("AGENTE_WORKER_CONFIG")) {
        const char* path = std::getenv("AGENTE_WORKER_CONFIG_PATH");
        std::string name = path && *path ? path : snapshot;
        read_config_from(name, snapshot);
        rest.insert(rest.end(), {"--config", name});
        ::unsetenv("AGENTE_WORKER_CONFIG");
        ::unsetenv("AGENTE_WORKER_CONFIG_PATH");
    }
    core::WorkerSetup worker;
    bool is_worker = worker.from_environment();
    if (!is_worker) {
        if (std::optional<CommandLine> command_line = split_command(rest))
            return run_app_command(*command_line, env_args ? env_args : "");
    }
    LoadedConfig loaded;
    try {
        loaded = load_config(rest, env_args ? env_args : "");
        bool checked = loaded.action == Action::check_config || (loaded.action == Action::serve && !is_worker);
        if (checked) check_config_environment(loaded.config);  // a worker's master checked it
        if (loaded.action != Action::serve) return print_and_exit(loaded);
    } catch (const std::exception& e) {
        std::cerr << "Error: " << e.what() << "\n";
        return 1;
    }
    try {
        core::setup_error_log(loaded.config);
    } catch (const std::exception& e) {
        std::cerr << "Error: cannot open the error log: " << e.what() << "\n";
        return 1;
    }
    if (is_worker && worker.pool == core::Pool::dirty) return core::run_dirty_worker(loaded.config, worker);
    if (is_worker) return core::run_worker(loaded.config, worker);
    return core::run_master(std::move(loaded.config), std::move(args));
}
