// ASCII case-insensitive matching for HTTP tokens (scheme names, media types). Not Boost's
// istarts_with: it consults the std::locale per character, which cost ~8k instructions per proxied
// request, more than hashing the client's key.
#pragma once

#include <string_view>

namespace agente::app {

inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

inline bool istarts_with(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (ascii_lower(s[i]) != ascii_lower(prefix[i])) return false;
    return true;
}

}  // namespace agente::app
