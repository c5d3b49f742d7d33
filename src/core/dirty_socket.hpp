// Where the dirty pool takes calls: one Unix stream socket the master binds (in the abstract
// namespace, so no file to create, own or clean up after a crash) and keeps for its whole life.
// Abstract names are listed in /proc/net/unix and carry no permissions: a dirty worker serves only
// callers running as its own user (SO_PEERCRED), as a socket file of mode 0600 would.
// Dirty workers inherit it and accept from it, as HTTP workers accept from the listeners; HTTP
// workers connect to it by name, one connection per call. Respawns and reloads change nothing for
// a caller: a connection waits in the socket's backlog until some dirty worker takes it, and the
// backlog (dirty_backlog) is the pool's bounded queue: a connect finding it full fails at once.
#pragma once

#include <string>
#include <utility>
#include <sys/socket.h>
#include <sys/un.h>

namespace agente::core {

// Owns its fd: one bound for a reload that is then refused closes with it.
struct DirtySocket {
    std::string address;   // "@agente-hibrido-dirty-<master pid>-<random>"
    int fd = -1;

    DirtySocket() = default;
    DirtySocket(DirtySocket&& other) noexcept : address(std::move(other.address)), fd(std::exchange(other.fd, -1)) {}
    DirtySocket& operator=(DirtySocket&& other) noexcept;
    ~DirtySocket();
};

// Binds a fresh socket under a name of its own (master pid, random suffix); throws std::runtime_error.
DirtySocket bind_dirty_socket(int backlog);

// A new backlog for the bound socket (listen(2) again: a reload may change dirty_backlog).
void set_dirty_backlog(const DirtySocket& socket, int backlog);

// The sockaddr of an "@name" address, and its length for connect(2).
socklen_t dirty_sockaddr(const std::string& address, sockaddr_un& out);

}  // namespace agente::core
