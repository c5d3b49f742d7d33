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
};

// Binds every address (SO_REUSEADDR, listen(backlog)); throws std::runtime_error naming the address
// ("127.0.0.1:8000: Address already in use") on the first failure, closing what it opened.
std::vector<Listener> bind_listeners(const std::vector<std::string>& addresses, int backlog);

// Reconciles `current` with the wanted addresses: keeps the ones still wanted, binds new ones,
// closes (and unlinks, for unix sockets) the ones no longer wanted. Throws like bind_listeners,
// leaving `current` untouched.
std::vector<Listener> rebind_listeners(std::vector<Listener> current, const std::vector<std::string>& addresses,
                                       int backlog);

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
