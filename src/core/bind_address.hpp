// Which listening sockets serve TLS. gunicorn's `certfile` makes every `bind` address TLS; to serve
// plain and TLS side by side, an entry of `bind` may carry a scheme: "https://0.0.0.0:8443" serves
// TLS, "http://127.0.0.1:8000" plain HTTP. A bare address follows gunicorn's rule (TLS when
// certfile is set) unless some entry says https://: an operator who marks the TLS sockets expects
// the unmarked ones to stay plain. A Unix socket is never TLS (it is for a proxy on the same host).
#pragma once

#include <agente/config.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agente::core {

enum class Scheme { bare, http, https };

// "https://0.0.0.0:8443" is {https, "0.0.0.0:8443"}; the scheme in any case; an entry without one
// is bare and whole.
std::pair<Scheme, std::string_view> split_scheme(std::string_view entry);

struct BindAddress {
    std::string address;   // as the listeners bind it: "0.0.0.0:8443", "unix:/run/x.sock"
    bool tls = false;

    bool operator==(const BindAddress&) const = default;
};

// `bind`'s entries, in order, each with whether it serves TLS.
std::vector<BindAddress> bind_addresses(const Config& config);

// The same, addresses only: what the master binds (or matches to the sockets systemd passed).
std::vector<std::string> socket_addresses(const Config& config);

// Whether the socket listening at `address` serves TLS: the bind entry naming it decides; a socket
// no entry names (systemd passed it and `bind` is unset) follows the rule for bare addresses.
bool serves_tls(const Config& config, std::string_view address);

}  // namespace agente::core
