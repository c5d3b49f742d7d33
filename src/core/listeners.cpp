#include "core/listeners.hpp"

#include "core/systemd_notify.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace agente::core {

namespace {

[[noreturn]] void fail(const std::string& address, const std::string& what) {
    throw std::runtime_error(address + ": " + what);
}

std::string errno_text() { return std::strerror(errno); }

// "HOST:PORT" / "[v6]:PORT" into host and port; "localhost" stays a name for getaddrinfo.
void split_host_port(const std::string& address, std::string& host, std::string& port) {
    if (!address.empty() && address.front() == '[') {
        auto close = address.find(']');
        if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':')
            fail(address, "expected [ADDRESS]:PORT");
        host = address.substr(1, close - 1);
        port = address.substr(close + 2);
        return;
    }
    auto colon = address.rfind(':');
    if (colon == std::string::npos) fail(address, "expected HOST:PORT");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
}

int bind_unix(const std::string& address, int backlog) {
    std::string path = address.substr(5);
    sockaddr_un sa{};
    if (path.size() >= sizeof(sa.sun_path)) fail(address, "path too long");
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(address, errno_text());
    // A stale socket file from a crashed run would make bind fail; a live server would still answer.
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
            ::close(fd);
            fail(address, "Address already in use");
        }
        ::close(fd);
        ::unlink(path.c_str());
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, backlog) != 0) {
        std::string e = errno_text();
        ::close(fd);
        fail(address, e);
    }
    return fd;
}

int bind_inet(const std::string& address, int backlog) {
    std::string host, port;
    split_host_port(address, host, port);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) fail(address, ::gai_strerror(rc));
    std::string error = "no address";
    int fd = -1;
    for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) { error = errno_text(); continue; }
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
            error = errno_text();
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(res);
    if (fd < 0) fail(address, error);
    return fd;
}

Listener bind_one(const std::string& address, int backlog) {
    bool is_unix = address.rfind("unix:", 0) == 0;
    int fd = is_unix ? bind_unix(address, backlog) : bind_inet(address, backlog);
    return {address, fd, is_unix};
}

// Workers are exec'd and find listeners by number, so these fds must survive exec.
void keep_across_exec(int fd) { ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) & ~FD_CLOEXEC); }

bool same_address(const std::string& wanted, int fd) {
    std::string actual = socket_address(fd);
    if (actual == wanted) return true;
    // "localhost:8000" or ":8000": names we would have resolved ourselves; compare by port.
    std::string wh, wp, ah, ap;
    if (wanted.rfind("unix:", 0) == 0 || actual.rfind("unix:", 0) == 0) return false;
    try { split_host_port(wanted, wh, wp); split_host_port(actual, ah, ap); } catch (...) { return false; }
    return wp == ap && (wh == "localhost" || wh.empty());
}

// Closes a listener that is given up, and removes a unix socket's file with it: left behind, the
// file would say a server is there when none is. (close_listeners() leaves the files: a master that
// stops after USR2 hands its unix sockets to the successor, which serves on them.)
void discard(const Listener& l) noexcept {
    if (l.is_unix) ::unlink(l.address.c_str() + 5);  // past "unix:"; no allocation here
    ::close(l.fd);
}

void discard_all(std::vector<Listener>& listeners) noexcept {
    for (const auto& l : listeners) discard(l);
    listeners.clear();
}

}  // namespace

std::vector<Listener> bind_listeners(const std::vector<std::string>& addresses, int backlog) {
    std::vector<Listener> out;
    try {
        for (const auto& a : addresses) {
            out.push_back(bind_one(a, backlog));
            keep_across_exec(out.back().fd);
        }
    } catch (...) {
        discard_all(out);
        throw;
    }
    return out;
}

ListenerUpdate::ListenerUpdate(const std::vector<Listener>& current, const std::vector<std::string>& addresses,
                               int backlog) {
    std::vector<std::string> missing;
    for (const auto& a : addresses)
        if (std::none_of(current.begin(), current.end(), [&](const Listener& l) { return l.address == a; }))
            missing.push_back(a);
    added_ = bind_listeners(missing, backlog);  // throws having closed what it bound
    try {
        for (const auto& l : current)
            if (std::find(addresses.begin(), addresses.end(), l.address) != addresses.end()) next_.push_back(l);
        next_.insert(next_.end(), added_.begin(), added_.end());
    } catch (...) {
        discard_all(added_);
        throw;
    }
}

ListenerUpdate::~ListenerUpdate() {
    if (!committed_) discard_all(added_);
}

void ListenerUpdate::commit(std::vector<Listener>& current) noexcept {
    current.swap(next_);  // next_ now holds the previous set: close what the new one no longer has
    for (const auto& old : next_) {
        bool kept = std::any_of(current.begin(), current.end(), [&](const Listener& l) { return l.fd == old.fd; });
        if (!kept) discard(old);
    }
    next_.clear();
    committed_ = true;
}

std::vector<Listener> inherited_listeners(const std::vector<std::string>& addresses) {
    std::vector<Listener> found;
    if (const char* ours = std::getenv("AGENTE_HIBRIDO_LISTEN_FDS")) {
        found = parse_fds(ours);
        ::unsetenv("AGENTE_HIBRIDO_LISTEN_FDS");
    } else {
        int n = listen_fds();
        for (int i = 0; i < n; ++i) found.push_back({socket_address(SD_LISTEN_FDS_START + i), SD_LISTEN_FDS_START + i,
                                                     false});
    }
    for (auto& l : found) {
        l.is_unix = l.address.rfind("unix:", 0) == 0;
        keep_across_exec(l.fd);
    }
    if (addresses.empty() || found.empty()) return found;
    std::vector<Listener> matched;
    for (const auto& a : addresses)
        for (auto& l : found)
            if (l.fd >= 0 && same_address(a, l.fd)) {
                matched.push_back({a, l.fd, l.is_unix});
                l.fd = -1;
            }
    for (auto& l : found)
        if (l.fd >= 0) {
            spdlog::warn("Closing passed socket {} (fd {}): `bind` does not name it", l.address, l.fd);
            ::close(l.fd);
        }
    return matched;
}

std::string format_fds(const std::vector<Listener>& listeners) {
    std::string out;
    for (const auto& l : listeners) out += (out.empty() ? "" : ",") + std::to_string(l.fd);
    return out;
}

std::vector<Listener> parse_fds(const std::string& fds) {
    std::vector<Listener> out;
    std::stringstream ss(fds);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) {
            int fd = std::stoi(item);
            out.push_back({socket_address(fd), fd, false});
            out.back().is_unix = out.back().address.rfind("unix:", 0) == 0;
        }
    return out;
}

void close_listeners(std::vector<Listener>& listeners) {
    for (auto& l : listeners)
        if (l.fd >= 0) ::close(l.fd);
    listeners.clear();
}

std::string socket_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char host[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &sa->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(sa->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &sa->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(ntohs(sa->sin6_port));
    }
    if (ss.ss_family == AF_UNIX) return "unix:" + std::string(reinterpret_cast<sockaddr_un*>(&ss)->sun_path);
    return "?";
}

}  // namespace agente::core
