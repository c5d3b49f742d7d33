#include "core/router.hpp"

#include <stdexcept>

namespace agente::core {

namespace {

// The next "/segment" of `rest` (without its slash), consuming it; false at the end.
bool next_segment(std::string_view& rest, std::string_view& segment) {
    if (rest.empty() || rest.front() != '/') return false;
    rest.remove_prefix(1);
    std::size_t end = rest.find('/');
    if (end == std::string_view::npos) end = rest.size();
    segment = rest.substr(0, end);
    rest.remove_prefix(end);
    return true;
}

}  // namespace

Route& RouteTable::insert(std::string method, std::string pattern) {
    Route r;
    r.method = std::move(method);
    std::string_view rest = pattern, segment;
    if (rest.empty() || rest.front() != '/') throw std::invalid_argument("route " + pattern + ": must start with /");
    std::size_t params = 0;
    while (next_segment(rest, segment)) {
        bool param = segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
        if (!param && segment.find_first_of("{}") != std::string_view::npos)
            throw std::invalid_argument("route " + pattern + ": a {name} must be a whole segment");
        if (param && ++params > max_path_params)
            throw std::invalid_argument("route " + pattern + ": more than " + std::to_string(max_path_params) +
                                        " {name} segments");
        r.segments.emplace_back(param ? std::string_view() : segment);
        r.is_param.push_back(param);
    }
    r.has_param = params > 0;
    r.path = std::move(pattern);
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
        RouteMatch here;
        if (!r.has_param) {
            if (path != r.path) continue;
        } else {
            std::string_view rest = path, segment;
            std::size_t i = 0;
            bool ok = true;
            for (; ok && next_segment(rest, segment); ++i) {
                if (i >= r.segments.size()) ok = false;
                else if (!r.is_param[i]) ok = segment == r.segments[i];
                else if (segment.empty()) ok = false;
                else here.params[here.param_count++] = segment;
            }
            // A path left unread ("" after a trailing slash, or more segments) or a pattern left
            // unmatched is another path.
            if (!ok || !rest.empty() || i != r.segments.size()) continue;
            here.param = here.params[here.param_count - 1];
        }
        m.path_known = true;
        if (r.method == method) {
            here.route = &r;
            here.path_known = true;
            return here;
        }
    }
    return m;
}

}  // namespace agente::core
