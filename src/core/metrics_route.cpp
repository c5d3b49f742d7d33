#include "core/metrics_route.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace agente::core {

bool local_only(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
    if (ss.ss_family == AF_UNIX) return true;
    if (ss.ss_family == AF_INET) {
        auto& a = reinterpret_cast<sockaddr_in&>(ss).sin_addr;
        return (ntohl(a.s_addr) >> 24) == 127;
    }
    if (ss.ss_family == AF_INET6) {
        auto& a = reinterpret_cast<sockaddr_in6&>(ss).sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
        return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
    }
    return false;
}

MetricsAccess::MetricsAccess(const Config& config, const std::vector<Listener>& listeners) {
    if (!config.metrics_token.empty()) token_ = secret_digest(config.metrics_token);
    for (const auto& l : listeners) all_local_ = all_local_ && local_only(l.fd);
}

std::optional<Response> MetricsAccess::refuse(const Request& request) const {
    if (!token_) {
        if (all_local_) return std::nullopt;
        return Response::error(403, "GET /metrics needs metrics_token when the server listens beyond loopback "
                                    "(set metrics_token, metrics_token_env or metrics_token_file in server.conf)");
    }
    std::string_view presented = bearer_token(request.header("Authorization"));
    if (!presented.empty() && same_digest(secret_digest(presented), *token_)) return std::nullopt;
    Response r = Response::error(401, "GET /metrics needs the metrics token (Authorization: Bearer ...)");
    r.headers.push_back({"WWW-Authenticate", "Bearer"});
    return r;
}

void add_metrics_route(RouteTable& routes, MetricsAccess access, const CoreMetrics& metrics,
                       const Scoreboard& scoreboard, App& app) {
    routes.add("GET", "/metrics", SyncHandler([access, &metrics, &scoreboard, &app](const Request& request) {
                   if (auto refusal = access.refuse(request)) return std::move(*refusal);
                   MetricsText out;
                   metrics.write(out, scoreboard);
                   app.write_metrics(out);
                   Response r;
                   r.content_type = std::string(MetricsText::content_type);
                   r.body = out.take();
                   return r;
               }));
}

}  // namespace agente::core
