// OpenAI's attribute filters for vector store search: comparisons {"type": eq|ne|gt|gte|lt|lte|in|nin,
// "key", "value"} and compounds {"type": and|or, "filters": [...]}, evaluated against a file's
// attributes (a JSON object of strings, numbers and booleans).
//
// Semantics, where OpenAI's documentation leaves them open: a key the attributes lack matches no
// comparison, ne and nin included (a filter never selects files by what they do not say). Numbers
// compare as numbers, strings as byte strings (ISO dates order correctly), booleans only by eq/ne;
// a value of another type than the attribute's matches nothing, except ne, which it does not equal.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agente::rag {

struct Filter {
    enum class Op { eq, ne, gt, gte, lt, lte, in, nin, all, any };
    Op op = Op::eq;
    std::string key;
    nlohmann::json value;
    std::vector<Filter> filters;   // all (and), any (or)
};

// Bounds on what one request may ask: nesting and comparisons.
inline constexpr int max_filter_depth = 16;
inline constexpr int max_filter_nodes = 256;

// The filter, or nullopt with `problem` saying what is wrong (for a 400 answer), naming the place
// ("filters.filters[1].type: ...").
std::optional<Filter> parse_filter(const nlohmann::json& j, std::string& problem);

bool matches(const Filter& f, const nlohmann::json& attributes);

// OpenAI's limits on attributes: an object of at most 16 keys of at most 64 characters, values
// strings of at most 512 characters, numbers or booleans. A message for a 400 answer when not.
std::optional<std::string> attributes_problem(const nlohmann::json& attributes);

}  // namespace agente::rag
