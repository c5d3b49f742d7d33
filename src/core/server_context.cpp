#include "core/server_context.hpp"

#include <ctime>

namespace agente::core {

bool ServerContext::trusts_forwarded(std::string_view peer) const {
    for (const auto& ip : config.forwarded_allow_ips)
        if (ip == "*" || ip == peer) return true;
    return false;
}

std::string_view ServerContext::fixed_fields() {
    std::time_t now = std::time(nullptr);
    if (now != date_second_) {
        date_second_ = now;
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        char buf[40];
        std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        fixed_fields_ = std::string(server_and_date) + buf + "\r\n";
    }
    return fixed_fields_;
}

}  // namespace agente::core
