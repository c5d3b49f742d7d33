#include "app/rag/wire.hpp"

#include "app/json_text.hpp"

namespace agente::rag::wire {

std::string pack(const nlohmann::json& head, std::string_view tail) {
    std::string out = json_text(head);
    out.reserve(out.size() + 1 + tail.size());
    out.push_back('\n');
    out.append(tail);
    return out;
}

Unpacked unpack(std::string_view packed) {
    std::size_t nl = packed.find('\n');
    std::string_view head = packed.substr(0, nl);
    Unpacked u;
    u.head = parse_json(head);
    if (nl != std::string_view::npos) u.tail = packed.substr(nl + 1);
    return u;
}

}  // namespace agente::rag::wire
