// The route table behind agente::Router: exact paths, and "/prefix/{name}" routes whose last
// segment becomes the request's path_param(). Looked up once per request, allocation-free.
#pragma once

#include <agente/handler.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace agente::core {

struct Route {
    std::string method;
    std::string path;          // exact path, or the prefix before "{name}"
    bool has_param = false;
    SyncHandler sync;
    AsyncHandler async;
    RouteOptions options;
};

struct RouteMatch {
    const Route* route = nullptr;
    std::string_view param;
    bool path_known = false;   // some route has this path: 405 rather than 404
};

class RouteTable final : public Router {
public:
    void add(std::string method, std::string pattern, SyncHandler handler) override;
    void add(std::string method, std::string pattern, AsyncHandler handler, RouteOptions options) override;
    RouteMatch find(std::string_view method, std::string_view path) const;

private:
    Route& insert(std::string method, std::string pattern);
    std::vector<Route> routes_;
};

}  // namespace agente::core
