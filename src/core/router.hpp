// The route table behind agente::Router: exact paths, and patterns with "{name}" segments
// ("/items/{id}/parts/{part}") whose text becomes the request's path parameters, in order. Looked up
// once per request, allocation-free.
#pragma once

#include <agente/handler.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace agente::core {

// The most {name} segments one route may have.
inline constexpr std::size_t max_path_params = 4;

struct Route {
    std::string method;
    std::string path;                       // the pattern as given
    std::vector<std::string> segments;      // the pattern's segments; "" where a {name} stands
    std::vector<bool> is_param;
    bool has_param = false;
    int metrics_label = 0;     // the pattern's label in the request counters (core_metrics.hpp)
    SyncHandler sync;
    AsyncHandler async;
    RouteOptions options;
};

struct RouteMatch {
    const Route* route = nullptr;
    std::array<std::string_view, max_path_params> params{};
    std::size_t param_count = 0;
    std::string_view param;    // the last {name} segment's text ("" when none)
    bool path_known = false;   // some route has this path: 405 rather than 404
};

class RouteTable final : public Router {
public:
    void add(std::string method, std::string pattern, SyncHandler handler) override;
    void add(std::string method, std::string pattern, AsyncHandler handler, RouteOptions options) override;
    RouteMatch find(std::string_view method, std::string_view path) const;
    // Gives every route its metrics label, from its pattern.
    template <class LabelOf>
    void label_routes(LabelOf label_of) {
        for (Route& r : routes_) r.metrics_label = label_of(std::string_view(r.path));
    }

private:
    Route& insert(std::string method, std::string pattern);
    std::vector<Route> routes_;
};

}  // namespace agente::core
