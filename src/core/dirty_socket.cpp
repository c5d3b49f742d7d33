#include "core/dirty_socket.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <random>
#include <stdexcept>

namespace agente::core {

DirtySocket& DirtySocket::operator=(DirtySocket&& other) noexcept {
    std::swap(address, other.address);
    std::swap(fd, other.fd);
    return *this;
}

DirtySocket::~DirtySocket() {
    if (fd >= 0) ::close(fd);
}

socklen_t dirty_sockaddr(const std::string& address, sockaddr_un& out) {
    out = {};
    out.sun_family = AF_UNIX;
    std::string name = address.substr(1);   // after '@': the abstract name, sun_path[0] stays '\0'
    if (name.size() + 1 > sizeof out.sun_path) throw std::runtime_error("dirty socket name too long");
    std::memcpy(out.sun_path + 1, name.data(), name.size());
    return socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

DirtySocket bind_dirty_socket(int backlog) {
    std::random_device random;
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%08x%08x", random(), random());
    DirtySocket s;
    s.address = "@agente-hibrido-dirty-" + std::to_string(::getpid()) + "-" + suffix;
    // Close-on-exec: only dirty workers get it, named in exec_child's list of fds to keep.
    s.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s.fd < 0) throw std::runtime_error(std::string("dirty socket: ") + std::strerror(errno));
    sockaddr_un sa;
    socklen_t len = dirty_sockaddr(s.address, sa);
    if (::bind(s.fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(s.fd, backlog) != 0)
        throw std::runtime_error("dirty socket " + s.address + ": " + std::strerror(errno));
    return s;
}

void set_dirty_backlog(const DirtySocket& socket, int backlog) { ::listen(socket.fd, backlog); }

}  // namespace agente::core
