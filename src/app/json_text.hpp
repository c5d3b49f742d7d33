// JSON in and out of the app, safe for any bytes a client sends.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace agente {

// The deepest nesting a JSON text may have here (the gateway's request body too). nlohmann parses
// and frees a tree without recursing, but copies one recursively: a 100,000-level value copied
// anywhere overflowed the stack and killed the worker.
constexpr int max_json_depth = 1000;

// `text` as a tree; a discarded value (is_discarded()) when it is not JSON or nests deeper than
// max_json_depth.
nlohmann::json parse_json(std::string_view text);

// `j` as compact text. A value built from raw request bytes (a path, a Host header) may hold invalid
// UTF-8, on which dump() throws; here each bad byte becomes U+FFFD.
std::string json_text(const nlohmann::json& j);

}  // namespace agente
