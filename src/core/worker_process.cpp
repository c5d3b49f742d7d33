#include "core/worker_process.hpp"

#include "core/proc_title.hpp"
#include "core/worker.hpp"

#include <boost/asio/io_context.hpp>
#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <stdexcept>

namespace agente::core {

std::string worker_title(const char* role, const Config& config, bool draining) {
    return std::string("agente-hibrido: ") + role + " [" + config.display_name() + "]" + (draining ? " (draining)" : "");
}

// Only root can switch; gunicorn does the same in its workers.
void drop_privileges(const Config& c) {
    if (::geteuid() != 0) return;
    if (!c.group.empty()) {
        group* g = ::getgrnam(c.group.c_str());
        if (!g || ::setgid(g->gr_gid) != 0) throw std::runtime_error("cannot switch to group " + c.group);
    }
    if (!c.user.empty()) {
        passwd* p = ::getpwnam(c.user.c_str());
        if (!p) throw std::runtime_error("no such user " + c.user);
        if (c.group.empty() && ::setgid(p->pw_gid) != 0) throw std::runtime_error("cannot switch group");
        if (::initgroups(p->pw_name, ::getgid()) != 0 || ::setuid(p->pw_uid) != 0)
            throw std::runtime_error("cannot switch to user " + c.user);
    }
}

void watch_worker_signals(boost::asio::signal_set& signals, WorkerSignals on) {
    for (int s : {SIGTERM, SIGINT, SIGQUIT, SIGUSR1}) signals.add(s);
    signals.async_wait([&signals, on = std::move(on)](boost::system::error_code ec, int sig) mutable {
        if (ec) return;
        if (sig == SIGTERM) on.drain();
        else if (sig == SIGUSR1) on.reopen_logs();
        else on.stop_now();
        auto& context = static_cast<boost::asio::io_context&>(signals.get_executor().context());
        if (!context.stopped()) watch_worker_signals(signals, std::move(on));
    });
}

int run_worker_process(const char* role, const Config& config, const std::function<int()>& body) {
    try {
        ::signal(SIGPIPE, SIG_IGN);
        for (int s : {SIGHUP, SIGWINCH, SIGTTIN, SIGTTOU, SIGUSR2}) ::signal(s, SIG_IGN);
        set_proc_title(worker_title(role, config));
        drop_privileges(config);
        return body();
    } catch (const std::exception& e) {
        spdlog::error("Exception in {} process: {}", role, e.what());
        return worker_boot_error;
    }
}

}  // namespace agente::core
