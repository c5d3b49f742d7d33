// The master (gunicorn's arbiter): binds the sockets, forks and execs the workers, and supervises
// them in one loop that reads top to bottom. It never serves a request itself.
#pragma once

#include <agente/config.hpp>

#include <string>
#include <vector>

namespace agente::core {

// Runs the master until it is stopped; returns the process exit code. `argv` is the command line
// the process was started with (argv[0] included), reused to start workers and a USR2 successor.
int run_master(Config config, std::vector<std::string> argv);

}  // namespace agente::core
