#include "core/spawn.hpp"

#include <boost/asio/io_context.hpp>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace agente::core {

std::string exe_path() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) throw std::runtime_error("cannot find my own executable");
    return std::string(buf, std::size_t(n));
}

namespace {

// In the child, before exec: every fd above 2 closes on exec but those named. Without
// close_range (Linux < 5.11) the child inherits what is not close-on-exec, as before.
void keep_only(const std::vector<int>& keep_fds) {
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int fd : keep_fds) ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) & ~FD_CLOEXEC);
}

// Every signal's default action, as exec gives it, but SIGPIPE, which stays ignored (as it does
// across exec): the master's handlers, inherited by a fork, would write into its signal pipe.
void default_signal_actions() {
    for (int sig = 1; sig < NSIG; ++sig)
        if (sig != SIGPIPE) ::signal(sig, SIG_DFL);
}

// In a worker just forked: default signal actions, and never outliving the master.
void start_worker_child(pid_t parent) {
    default_signal_actions();
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
}

}  // namespace

pid_t exec_child(const std::string& exe, const std::vector<std::string>& argv,
                 const std::vector<std::string>& extra_env, const std::vector<int>& keep_fds, Child kind) {
    std::vector<std::string> env_strings(extra_env);
    for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_t parent = ::getpid();
    int pid_pipe[2] = {-1, -1};
    if (kind == Child::detached_master && ::pipe2(pid_pipe, O_CLOEXEC) != 0) return -1;
    // Signals stay blocked across fork: until exec, asio's handlers (inherited) would write
    // into the master's signal pipe.
    sigset_t all, previous;
    ::sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, &previous);
    pid_t pid = ::fork();
    if (pid == 0) {
        if (kind == Child::worker) {
            start_worker_child(parent);
        } else {
            default_signal_actions();
            pid_t grandchild = ::fork();
            if (grandchild != 0) {
                (void)!::write(pid_pipe[1], &grandchild, sizeof grandchild);
                ::_exit(0);
            }
        }
        keep_only(keep_fds);
        ::sigprocmask(SIG_SETMASK, &previous, nullptr);
        ::execve(exe.c_str(), args.data(), envp.data());
        ::_exit(127);
    }
    int fork_errno = errno;
    ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    if (pid < 0) spdlog::error("fork failed: {}", std::strerror(fork_errno));
    if (kind == Child::detached_master) {
        ::close(pid_pipe[1]);
        pid_t grandchild = -1;
        if (pid < 0 || ::read(pid_pipe[0], &grandchild, sizeof grandchild) != sizeof grandchild) grandchild = -1;
        ::close(pid_pipe[0]);
        if (pid > 0) ::waitpid(pid, nullptr, 0);  // the intermediate child exits at once
        return grandchild;
    }
    return pid;
}

std::optional<BinaryStamp> stamp_of(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return BinaryStamp{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec};
}

pid_t fork_worker(boost::asio::io_context& ioc, sigset_t& child_mask) {
    pid_t parent = ::getpid();
    std::fflush(nullptr);  // bytes buffered in stdio would be written twice, once by each process
    sigset_t all;
    ::sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, &child_mask);
    ioc.notify_fork(boost::asio::execution_context::fork_prepare);
    pid_t pid = ::fork();
    if (pid == 0) {
        start_worker_child(parent);
        ioc.notify_fork(boost::asio::execution_context::fork_child);
        return 0;
    }
    int fork_errno = errno;
    ioc.notify_fork(boost::asio::execution_context::fork_parent);
    ::sigprocmask(SIG_SETMASK, &child_mask, nullptr);
    if (pid < 0) spdlog::error("fork failed: {}", std::strerror(fork_errno));
    return pid;
}

void enter_forked_child(const std::vector<int>& keep_fds, const sigset_t& mask) {
    std::vector<int> keep(keep_fds);
    std::sort(keep.begin(), keep.end());
    unsigned next = 3;
    for (int fd : keep) {
        if (fd < int(next)) continue;
        if (unsigned(fd) > next) ::close_range(next, unsigned(fd) - 1, 0);
        next = unsigned(fd) + 1;
    }
    ::close_range(next, ~0U, 0);
    default_signal_actions();
    ::sigprocmask(SIG_SETMASK, &mask, nullptr);
}

}  // namespace agente::core
