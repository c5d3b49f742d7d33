// Host is parsed by Boost.URL's authority grammar (RFC 3986 3.2; the library is compiled once, in
// the core's asio_impl.cpp); the port by hand, since port_number() wraps values past 65535.
#include "app/agent/base_url.hpp"

#include <boost/url/parse.hpp>

#include <charconv>

namespace agente::agent {

namespace {

constexpr std::size_t max_port_digits = 5;
constexpr unsigned max_port = 65535;

bool valid_port(std::string_view p) {
    unsigned n = 0;
    if (p.empty() || p.size() > max_port_digits) return false;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), n);
    return ec == std::errc() && end == p.data() + p.size() && n >= 1 && n <= max_port;
}

}  // namespace

std::string base_url_from_host(std::string_view scheme, std::string_view host) {
    auto authority = boost::urls::parse_authority(host);
    if (!authority || authority->has_userinfo() || authority->encoded_host().empty()) return {};
    if (authority->has_port() && !valid_port(authority->port())) return {};
    std::string base(scheme == "https" ? "https" : "http");
    base += "://";
    base += host;
    return base;
}

}  // namespace agente::agent
