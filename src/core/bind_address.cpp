#include "core/bind_address.hpp"

#include <algorithm>
#include <cctype>

namespace agente::core {

namespace {

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), s.begin(),
                      [](char a, char b) { return std::tolower(static_cast<unsigned char>(b)) == a; });
}

bool is_unix(std::string_view address) { return address.starts_with("unix:"); }

// A bare TCP address serves TLS when certfile is set and no entry is marked https://.
bool bare_serves_tls(const Config& config) {
    if (config.certfile.empty()) return false;
    return std::none_of(config.bind.begin(), config.bind.end(),
                        [](const std::string& entry) { return split_scheme(entry).first == Scheme::https; });
}

}  // namespace

std::pair<Scheme, std::string_view> split_scheme(std::string_view entry) {
    if (starts_with_nocase(entry, "https://")) return {Scheme::https, entry.substr(8)};
    if (starts_with_nocase(entry, "http://")) return {Scheme::http, entry.substr(7)};
    return {Scheme::bare, entry};
}

std::vector<BindAddress> bind_addresses(const Config& config) {
    bool bare_tls = bare_serves_tls(config);
    std::vector<BindAddress> out;
    for (const auto& entry : config.bind) {
        auto [scheme, address] = split_scheme(entry);
        bool tls = !is_unix(address) && (scheme == Scheme::https || (scheme == Scheme::bare && bare_tls));
        out.push_back({std::string(address), tls});
    }
    return out;
}

std::vector<std::string> socket_addresses(const Config& config) {
    std::vector<std::string> out;
    for (auto& b : bind_addresses(config)) out.push_back(std::move(b.address));
    return out;
}

bool serves_tls(const Config& config, std::string_view address) {
    for (const auto& b : bind_addresses(config))
        if (b.address == address) return b.tls;
    return !is_unix(address) && bare_serves_tls(config);
}

}  // namespace agente::core
