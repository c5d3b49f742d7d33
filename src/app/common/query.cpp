#include "app/common/query.hpp"

#include <boost/url/parse.hpp>

namespace agente::app {

std::optional<std::vector<QueryParam>> parse_query(std::string_view query) {
    // "?query" is a relative reference of a query alone; Boost.URL parses it with its sizes, and
    // its decoded params() read '+' as a space.
    std::vector<QueryParam> out;
    if (query.empty()) return out;   // "?" alone would read as one empty parameter
    std::string reference;
    reference.reserve(query.size() + 1);
    reference.append("?").append(query);
    auto url = boost::urls::parse_relative_ref(reference);
    if (!url) return std::nullopt;
    for (auto p : url->params()) out.push_back({std::move(p.key), std::move(p.value)});
    return out;
}

}  // namespace agente::app
