// Starting a child process: fork + exec of the binary on disk now, so a reload runs newly installed
// code and a child starts clean (no inherited master state). Both pools' workers and a USR2
// successor are started here; what a child needs crosses exec explicitly (fds, environment).
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

namespace agente::core {

// A worker (of either pool) is the master's child, and dies with it. A USR2 successor is forked
// twice so that it is reparented to PID 1 at once: systemd accepts the MAINPID= of its own child,
// but treats another process's child as "alien" and then cannot wait for it to drain on stop.
enum class Child { worker, detached_master };

// The path of the running executable (/proc/self/exe), read once at start: after an install the
// name points at the new binary, which is what a reload must run.
std::string exe_path();

// Starts `exe` with `argv` (argv[0] becomes the process title) and the master's environment plus
// `extra_env`. The child inherits exactly `keep_fds` besides 0-2 (a dirty worker does not hold the
// HTTP listeners open, nor an HTTP worker the dirty socket). Returns the child's pid, or -1
// (logged) when fork failed.
pid_t exec_child(const std::string& exe, const std::vector<std::string>& argv,
                 const std::vector<std::string>& extra_env, const std::vector<int>& keep_fds, Child kind);

}  // namespace agente::core
