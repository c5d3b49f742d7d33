#include "core/router.hpp"

#include <stdexcept>

namespace agente::core {

Route& RouteTable::insert(std::string method, std::string pattern) {
    Route r;
    r.method = std::move(method);
    auto brace = pattern.find('{');
    if (brace != std::string::npos) {
        if (pattern.back() != '}' || brace == 0 || pattern[brace - 1] != '/')
            throw std::invalid_argument("route " + pattern + ": a {name} must be the whole last segment");
        r.path = pattern.substr(0, brace);
        r.has_param = true;
    } else {
        r.path = std::move(pattern);
    }
    routes_.push_back(std::move(r));
    return routes_.back();
}

void RouteTable::add(std::string method, std::string pattern, SyncHandler handler) {
    insert(std::move(method), std::move(pattern)).sync = std::move(handler);
}

void RouteTable::add(std::string method, std::string pattern, AsyncHandler handler, RouteOptions options) {
    Route& r = insert(std::move(method), std::move(pattern));
    r.async = std::move(handler);
    r.options = std::move(options);
}

RouteMatch RouteTable::find(std::string_view method, std::string_view path) const {
    RouteMatch m;
    if (method == "HEAD") method = "GET";  // HEAD is GET without the body
    for (const Route& r : routes_) {
        std::string_view param;
        if (r.has_param) {
            if (path.size() <= r.path.size() || path.compare(0, r.path.size(), r.path) != 0) continue;
            param = path.substr(r.path.size());
            if (param.find('/') != std::string_view::npos) continue;
        } else if (path != r.path) {
            continue;
        }
        m.path_known = true;
        if (r.method == method) {
            m.route = &r;
            m.param = param;
            return m;
        }
    }
    return m;
}

}  // namespace agente::core
