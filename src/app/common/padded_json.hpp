// Text for simdjson, which reads past a text's end in blocks: the `json_padding` bytes after it must
// be allocated (what they hold does not matter). A string built with that much spare capacity is
// read in place; any other text is copied once into one that has it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace agente::app {

// simdjson::SIMDJSON_PADDING, without its header; each parsing file asserts the two are equal.
inline constexpr std::size_t json_padding = 64;

inline std::string padded_copy(std::string_view json) {
    std::string text;
    text.reserve(json.size() + json_padding);
    text.assign(json);
    return text;
}

}  // namespace agente::app
