#include "app/json_text.hpp"

namespace agente {

nlohmann::json parse_json(std::string_view text) {
    bool too_deep = false;
    // Called as each value starts and ends; a container past the limit is dropped unbuilt, and the
    // whole text is refused after the parse.
    auto bound = [&too_deep](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
        bool opens = event == nlohmann::json::parse_event_t::object_start ||
                     event == nlohmann::json::parse_event_t::array_start;
        if (opens && depth >= max_json_depth) too_deep = true;
        return !too_deep;
    };
    nlohmann::json j = nlohmann::json::parse(text, bound, false);
    return too_deep ? nlohmann::json(nlohmann::json::value_t::discarded) : j;
}

std::string json_text(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace agente
