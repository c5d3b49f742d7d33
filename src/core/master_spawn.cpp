#include "core/master_state.hpp"
#include "core/worker_process.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

namespace agente::core {

bool Master::spawn_worker(Pool pool) {
    bool dirty = pool == Pool::dirty;
    auto generation = std::uint32_t(generation_);
    int slot = dirty ? scoreboard_.claim_dirty(0, generation) : scoreboard_.claim(0, generation);
    if (slot < 0) {
        spdlog::error("No free scoreboard slot for a new {}", lower_noun(pool));
        return false;
    }
    WorkerSetup setup;
    setup.pool = pool;
    setup.scoreboard_fd = scoreboard_.fd();
    setup.slot = slot;
    setup.master_pid = ::getpid();
    std::vector<int> keep = {scoreboard_.fd()};
    if (config_fd_ >= 0) keep.push_back(config_fd_);
    if (dirty) {
        setup.listeners = {Listener{dirty_socket_->address, dirty_socket_->fd, true}};
    } else {
        setup.listeners = listeners_;   // tls marked (mark_tls_listeners)
        setup.tls_fd = tls_fd_;
        if (tls_fd_ >= 0) keep.push_back(tls_fd_);
        setup.max_requests = config_.max_requests ? config_.max_requests + jitter() : 0;
        if (dirty_socket_ && config_.dirty_workers > 0) setup.dirty_address = dirty_socket_->address;
    }
    for (const auto& l : setup.listeners) keep.push_back(l.fd);
    std::vector<std::string> argv = argv_;
    argv[0] = worker_title(dirty ? "dirty worker" : "worker", config_);
    std::vector<std::string> env = setup.to_environment();
    if (config_fd_ >= 0) {
        env.push_back("AGENTE_WORKER_CONFIG=/proc/self/fd/" + std::to_string(config_fd_));
        env.push_back("AGENTE_WORKER_CONFIG_PATH=" + config_.config_path);
    }
    pid_t pid = binary_unchanged() ? fork_worker_process(setup, keep)
                                   : exec_child(exe_, argv, env, keep, Child::worker);
    if (pid < 0) {
        scoreboard_.release(slot);
        return false;
    }
    scoreboard_.slot(slot).pid = pid;
    WorkerRecord w;
    w.pid = pid;
    w.pool = pool;
    w.slot = slot;
    w.generation = generation_;
    w.spawned = Clock::now();
    workers_[pid] = w;
    bump(metrics_.supervision().worker_starts[int(pool)]);
    spdlog::info("Booting {} with pid: {}", lower_noun(pool), pid);
    return true;
}

// The file this master was started from is still the one on disk: a worker forked from us runs
// the code an exec'd one would. Once a rebuild or an install replaced it, workers are exec'd.
bool Master::binary_unchanged() const {
    if (!exe_stamp_) return false;
    return stamp_of(exe_) == exe_stamp_;
}

// In the child, this throws: the master's objects are destroyed on the way out (their fds
// closed, asio's signal registrations removed), except two fds the worker needs and their
// owners would close (~Scoreboard, ~DirtySocket), hence duplicates. The config snapshot is not
// needed: the worker takes this master's validated Config as it is.
pid_t Master::fork_worker_process(const WorkerSetup& setup, const std::vector<int>& keep) {
    sigset_t mask;
    pid_t pid = fork_worker(ioc_, mask);
    if (pid != 0) return pid;
    ForkedWorker child{config_, setup, keep, mask};
    std::erase(child.keep_fds, config_fd_);
    auto keep_copy = [&child](int& fd) {
        int copy = ::dup(fd);
        std::replace(child.keep_fds.begin(), child.keep_fds.end(), fd, copy);
        fd = copy;
    };
    keep_copy(child.setup.scoreboard_fd);
    if (setup.pool == Pool::dirty) keep_copy(child.setup.listeners.front().fd);
    throw child;
}

// The dirty socket is bound once the pool is wanted (at start, or by the first reload that asks
// for dirty workers) and kept: callers of every generation reach the pool through it. Binding a
// new one may throw (a start fails, a reload is refused); taking it, or a new backlog, does not.
std::optional<DirtySocket> Master::new_dirty_socket(const Config& config) const {
    if (config.dirty_workers == 0 || dirty_socket_) return std::nullopt;
    return bind_dirty_socket(config.dirty_backlog);
}

void Master::commit_dirty_socket(std::optional<DirtySocket> fresh, const Config& config) {
    if (fresh) {
        dirty_socket_ = std::move(fresh);
        spdlog::info("Dirty pool at: {}", dirty_socket_->address);
    } else if (dirty_socket_) {
        set_dirty_backlog(*dirty_socket_, config.dirty_backlog);
    }
}

std::uint64_t Master::jitter() {
    if (config_.max_requests_jitter <= 0) return 0;
    std::uniform_int_distribution<int> d(0, config_.max_requests_jitter);
    return std::uint64_t(d(rng_));
}

}  // namespace agente::core
