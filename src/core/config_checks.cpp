// check_config_environment(): what the settings name outside the process, checked when the
// configuration is loaded (start, --check-config, HUP) so that a pidfile nobody can write or a user
// that does not exist is an error with its file:line, not a silent failure later (a missing pidfile,
// a worker that cannot open its access log and fails to boot over and over).
#include <agente/config.hpp>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace agente {

namespace {

[[noreturn]] void fail(const Config& config, const std::string& setting, const std::string& what) {
    auto it = config.origins.find(setting);
    if (it == config.origins.end()) throw ConfigError("", 0, setting + ": " + what);
    throw ConfigError(it->second.file, it->second.line, it->second.name + ": " + what);
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// What the kernel says about writing `path`, or creating it in `dir` when it does not exist, as
// errno values (0: fine). Syscalls only: it also runs in a forked child (see probe_as).
struct WriteProbe {
    int path = 0;        // stat(path), then access(path, W_OK) when it exists
    bool is_dir = false;
    bool missing = false;
    int dir = 0;         // when missing: stat(dir), then access(dir, W_OK | X_OK)
    bool dir_not_dir = false;
};

WriteProbe probe(const char* path, const char* dir) noexcept {
    WriteProbe p;
    struct stat st{};
    if (::stat(path, &st) == 0) {
        p.is_dir = S_ISDIR(st.st_mode);
        if (!p.is_dir && ::access(path, W_OK) != 0) p.path = errno;
        return p;
    }
    if (errno != ENOENT) {
        p.path = errno;  // ENOTDIR (a file where a directory should be), EACCES on the way
        return p;
    }
    p.missing = true;
    if (::stat(dir, &st) != 0) p.dir = errno;
    else if (!S_ISDIR(st.st_mode)) p.dir_not_dir = true;
    else if (::access(dir, W_OK | X_OK) != 0) p.dir = errno;
    return p;
}

std::string explain(const WriteProbe& p, const std::string& path, const std::string& dir) {
    if (p.is_dir) return "expected a file, got the directory " + quoted(path);
    if (p.path) return "cannot write " + quoted(path) + ": " + std::strerror(p.path);
    if (!p.missing) return "";
    if (p.dir == ENOENT) return "the directory " + quoted(dir) + " does not exist (it is not created)";
    if (p.dir_not_dir) return "cannot create " + quoted(path) + ": " + quoted(dir) + " is not a directory";
    if (p.dir) return "cannot create " + quoted(path) + ": " + std::strerror(p.dir);
    return "";
}

std::string parent_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// The identity a worker takes after binding (worker.cpp's drop_privileges), when it takes one.
struct Identity {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
};

// The probe in a child that took `who` first, so the kernel answers for the workers (groups and
// ACLs included). Signals stay blocked in the child: the master's handlers would otherwise write
// into its signal pipe.
WriteProbe probe_as(const Identity& who, const std::string& path, const std::string& dir) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    sigset_t all, previous;
    ::sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, &previous);
    pid_t pid = ::fork();
    if (pid == 0) {
        WriteProbe p;
        if (::setgroups(who.groups.size(), who.groups.data()) != 0 || ::setgid(who.gid) != 0 ||
            ::setuid(who.uid) != 0)
            p.path = errno;
        else
            p = probe(path.c_str(), dir.c_str());
        (void)!::write(fds[1], &p, sizeof p);
        ::_exit(0);
    }
    int fork_errno = errno;
    ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    ::close(fds[1]);
    WriteProbe p;
    bool got = pid > 0 && ::read(fds[0], &p, sizeof p) == ssize_t(sizeof p);
    ::close(fds[0]);
    if (pid > 0) ::waitpid(pid, nullptr, 0);
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(fork_errno));
    if (!got) throw std::runtime_error("cannot check " + quoted(path) + " as the workers' user");
    return p;
}

void check_writable(const Config& config, const std::string& setting, const std::string& path,
                    const Identity* as) {
    std::string dir = parent_of(path);
    WriteProbe p = as ? probe_as(*as, path, dir) : probe(path.c_str(), dir.c_str());
    std::string problem = explain(p, path, dir);
    if (problem.empty()) return;
    if (as) problem += " (as user " + quoted(config.user) + ", which the workers switch to)";
    fail(config, setting, problem);
}

// --reload watches each file's directory (an editor's save replaces the file): a directory that is
// not there could never tell of a change, so it is said at start rather than never reloading.
void check_watchable(const Config& config) {
    for (const auto& path : config.reload_extra_files) {
        std::string dir = parent_of(path);
        struct stat st{};
        if (::stat(dir.c_str(), &st) != 0)
            fail(config, "reload_extra_files", "cannot watch " + quoted(path) + ": " + quoted(dir) + ": " +
                                                   std::strerror(errno));
        if (!S_ISDIR(st.st_mode))
            fail(config, "reload_extra_files",
                 "cannot watch " + quoted(path) + ": " + quoted(dir) + " is not a directory");
    }
}

}  // namespace

void check_config_environment(const Config& config) {
    group* g = config.group.empty() ? nullptr : ::getgrnam(config.group.c_str());
    if (!config.group.empty() && !g) fail(config, "group", "no such group " + quoted(config.group));
    gid_t gid = g ? g->gr_gid : 0;
    passwd* u = config.user.empty() ? nullptr : ::getpwnam(config.user.c_str());
    if (!config.user.empty() && !u) fail(config, "user", "no such user " + quoted(config.user));
    // Only root switches (drop_privileges); then the workers' files are checked as the workers.
    Identity worker;
    bool switches = u && ::geteuid() == 0;
    if (switches) {
        worker.uid = u->pw_uid;
        worker.gid = g ? gid : u->pw_gid;
        int n = 64;
        worker.groups.resize(std::size_t(n));
        std::string name = u->pw_name;
        while (::getgrouplist(name.c_str(), worker.gid, worker.groups.data(), &n) < 0)
            worker.groups.resize(std::size_t(n));
        worker.groups.resize(std::size_t(n));
    }
    const Identity* as_workers = switches ? &worker : nullptr;
    if (config.reload) check_watchable(config);
    if (!config.pidfile.empty()) check_writable(config, "pidfile", config.pidfile, nullptr);
    for (const auto& [setting, path] : {std::pair{"errorlog", &config.errorlog}, {"accesslog", &config.accesslog}})
        if (!path->empty() && *path != "-") check_writable(config, setting, *path, as_workers);
}

}  // namespace agente
