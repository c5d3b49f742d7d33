// The listening sockets: bound by the master before any fork (or handed over by systemd or by the
// previous master on USR2) and inherited by every worker by fd number.
#pragma once

#include <string>
#include <vector>

namespace agente::core {

struct Listener {
    std::string address;   // as in `bind`: "127.0.0.1:8000", "[::1]:8000", "unix:/run/x.sock"
    int fd = -1;
    bool is_unix = false;
    bool tls = false;      // serves TLS (bind_address.hpp); set by the master for its workers
};

// Binds every address (SO_REUSEADDR, listen(backlog)); throws std::runtime_error naming the address
// ("127.0.0.1:8000: Address already in use") on the first failure, closing what it opened (and
// removing the files of the unix sockets among it).
std::vector<Listener> bind_listeners(const std::vector<std::string>& addresses, int backlog);

// A reload's listeners, bound before anything changes. commit() makes them the master's and closes
// (and unlinks, for unix sockets) the ones no longer wanted; destroyed uncommitted, it closes (and
// unlinks) only what it bound itself, so a refused reload leaves the running set exactly as it was.
class ListenerUpdate {
public:
    // Keeps the current listeners still wanted, binds the new ones; throws like bind_listeners.
    ListenerUpdate(const std::vector<Listener>& current, const std::vector<std::string>& addresses, int backlog);
    ~ListenerUpdate();
    ListenerUpdate(const ListenerUpdate&) = delete;
    ListenerUpdate& operator=(const ListenerUpdate&) = delete;

    void commit(std::vector<Listener>& current) noexcept;

private:
    std::vector<Listener> next_;
    std::vector<Listener> added_;
    bool committed_ = false;
};

// Sockets passed by systemd (LISTEN_FDS) or by a previous master (AGENTE_HIBRIDO_LISTEN_FDS):
// matched to `addresses` by their bound address; all of them when `addresses` is empty.
std::vector<Listener> inherited_listeners(const std::vector<std::string>& addresses);

// "3,4,5" for a worker's environment, and back.
std::string format_fds(const std::vector<Listener>& listeners);
std::vector<Listener> parse_fds(const std::string& fds);

void close_listeners(std::vector<Listener>& listeners);

// The address a bound socket has, in `bind` form.
std::string socket_address(int fd);

}  // namespace agente::core
