#include "core/log_target.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace agente::core {

namespace {

[[noreturn]] void fail(const std::string& name, const char* what) {
    throw std::runtime_error("cannot open access log " + name + ": " + what + ": " + std::strerror(errno));
}

bool set_blocking(int fd, bool blocking) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return false;
    flags = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
    return ::fcntl(fd, F_SETFL, flags) == 0;
}

}  // namespace

LogTarget LogTarget::open(const std::string& name) {
    LogTarget t;
    t.name_ = name == "-" ? "stdout" : name;
    struct stat st{};
    if (name == "-") {
        t.fd_ = STDOUT_FILENO;
        if (::fstat(t.fd_, &st) != 0) fail(t.name_, "fstat");
        if (S_ISSOCK(st.st_mode)) {
            t.kind_ = Kind::stream;
            t.socket_ = true;
        } else if (S_ISFIFO(st.st_mode)) {
            int own = ::open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            if (own >= 0) {
                t.fd_ = own;
                t.owned_ = true;
                t.kind_ = Kind::stream;
            } else {
                // A pipe made by root, after the worker switched `user`, or no /proc: written as a
                // file is, blocking when its reader stalls, rather than not at all.
                spdlog::warn("Access log: cannot reopen the stdout pipe without blocking ({}); "
                             "writing to it directly", std::strerror(errno));
                t.kind_ = Kind::file;
            }
        } else {
            t.kind_ = Kind::file;
        }
        return t;
    }
    // Non-blocking for the open itself: a FIFO without a reader fails at once (ENXIO) instead of
    // waiting for one.
    t.fd_ = ::open(name.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0666);
    if (t.fd_ < 0) fail(name, "open");
    t.owned_ = true;
    if (::fstat(t.fd_, &st) != 0) fail(name, "fstat");
    if (S_ISFIFO(st.st_mode)) {
        t.kind_ = Kind::stream;
    } else {
        t.kind_ = Kind::file;  // a terminal would refuse a write now and then with O_NONBLOCK
        if (!set_blocking(t.fd_, true)) fail(name, "fcntl");
    }
    return t;
}

LogTarget::LogTarget(LogTarget&& o) noexcept
    : kind_(std::exchange(o.kind_, Kind::none)),
      name_(std::move(o.name_)),
      fd_(std::exchange(o.fd_, -1)),
      owned_(std::exchange(o.owned_, false)),
      socket_(o.socket_),
      watch_(std::exchange(o.watch_, -1)) {}

LogTarget& LogTarget::operator=(LogTarget&& o) noexcept {
    if (this != &o) {
        close();
        kind_ = std::exchange(o.kind_, Kind::none);
        name_ = std::move(o.name_);
        fd_ = std::exchange(o.fd_, -1);
        owned_ = std::exchange(o.owned_, false);
        socket_ = o.socket_;
        watch_ = std::exchange(o.watch_, -1);
    }
    return *this;
}

LogTarget::~LogTarget() { close(); }

void LogTarget::close() {
    if (watch_ >= 0) ::close(watch_);
    if (owned_ && fd_ >= 0) ::close(fd_);
    watch_ = fd_ = -1;
    owned_ = false;
    kind_ = Kind::none;
}

ssize_t LogTarget::write(const char* data, std::size_t size) const {
    if (socket_) return ::send(fd_, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    return ::write(fd_, data, size);
}

// Registered disabled (EPOLLONESHOT without events) until the first arm().
int LogTarget::watch_fd() {
    if (watch_ >= 0) return watch_;
    watch_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (watch_ < 0) return -1;
    epoll_event ev{};
    ev.events = EPOLLONESHOT;
    if (::epoll_ctl(watch_, EPOLL_CTL_ADD, fd_, &ev) != 0) {
        ::close(watch_);
        watch_ = -1;
    }
    return watch_;
}

void LogTarget::arm() {
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLONESHOT;
    ::epoll_ctl(watch_, EPOLL_CTL_MOD, fd_, &ev);
}

// Takes the event that woke us, so that the watch descriptor is quiet until the next arm().
void LogTarget::disarm() {
    epoll_event ev{};
    ::epoll_wait(watch_, &ev, 1, 0);
}

bool LogTarget::wait_writable(std::chrono::milliseconds limit) const {
    pollfd p{fd_, POLLOUT, 0};
    return ::poll(&p, 1, int(limit.count())) > 0 && (p.revents & POLLOUT);
}

std::size_t next_piece(std::string_view pending, std::size_t atomic) {
    if (pending.size() <= atomic) return pending.size();
    auto last = pending.rfind('\n', atomic - 1);
    if (last != std::string_view::npos) return last + 1;
    auto first = pending.find('\n');
    return first == std::string_view::npos ? pending.size() : first + 1;
}

}  // namespace agente::core
