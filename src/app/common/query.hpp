// A request's query string as decoded name/value pairs, for the app's routes that read one.
//
// Boost 1.81's own boost::urls::parse_query (Debian 12's Boost) must not be called on a view: it
// rebuilds its input from data() alone, with strlen, so a view that is not followed by a NUL (the
// query of a request target, which Beast keeps unterminated) runs on into whatever bytes follow it,
// and the last value grows those bytes ("order=asc" read as "asc\nV"). Here the query is parsed from
// a string of its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agente::app {

struct QueryParam {
    std::string name;    // percent-decoded
    std::string value;   // percent-decoded, '+' as a space (HTML forms, Python's urlencode); "" when none
};

// The parameters of `query` (the target's part after '?', without it), in order; nullopt when it is
// not a valid RFC 3986 query (a bad %-escape, a character a query cannot hold).
std::optional<std::vector<QueryParam>> parse_query(std::string_view query);

}  // namespace agente::app
