// Starting a child process. A USR2 successor, and any worker once the binary on disk changed, are
// fork + exec'd: a reload runs newly installed code, and what a child needs crosses exec explicitly
// (fds, environment). A worker (of either pool) of an unchanged binary is only forked (fork_worker):
// exec would load the same code again, and each exec'd worker then relocates its own private copy
// of every library's tables (about 0.5 MB of PSS per worker, docs/benchmarks.md).
#pragma once

#include <optional>
#include <signal.h>
#include <string>
#include <sys/types.h>
#include <vector>

namespace boost::asio {
class io_context;
}

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

// What identifies the file at a path: a rebuild or an install changes at least one of these.
struct BinaryStamp {
    dev_t device = 0;
    ino_t inode = 0;
    long long size = 0;
    long long mtime_ns = 0;
    bool operator==(const BinaryStamp&) const = default;
};
std::optional<BinaryStamp> stamp_of(const std::string& path);

// Forks a worker that goes on running this process's code. In the parent: the child's pid, or -1
// (logged). In the child: 0, with every signal blocked and `ioc` (the master's loop) moved onto
// descriptors of its own (asio's notify_fork), so that destroying it there leaves the master's
// epoll set and signal pipe alone. The child then unwinds the master's objects and calls
// enter_forked_child before it runs the worker.
pid_t fork_worker(boost::asio::io_context& ioc, sigset_t& child_mask);

// In a forked worker, once nothing of the master is left but memory: every fd above 2 but
// `keep_fds` closed, every signal's handler back to its default (SIGPIPE stays ignored, as across
// exec), `mask` restored. The same start an exec'd worker gets.
void enter_forked_child(const std::vector<int>& keep_fds, const sigset_t& mask);

}  // namespace agente::core
