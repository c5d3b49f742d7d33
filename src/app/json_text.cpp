#include "app/json_text.hpp"

namespace agente {

namespace {

using nlohmann::json;

// A first pass that builds nothing and stops at the first container past the bound. (nlohmann's
// parse callback could bound the depth while building, but with a callback each closing object
// rescans its parent: a million sibling objects took minutes.)
class DepthCheck final : public nlohmann::json_sax<json> {
public:
    bool too_deep = false;

    bool start_object(std::size_t) override { return enter(); }
    bool start_array(std::size_t) override { return enter(); }
    bool end_object() override { return leave(); }
    bool end_array() override { return leave(); }
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool key(string_t&) override { return true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception&) override { return false; }

private:
    bool enter() {
        too_deep = ++depth_ > max_json_depth;
        return !too_deep;
    }
    bool leave() {
        --depth_;
        return true;
    }

    int depth_ = 0;
};

}  // namespace

json parse_json(std::string_view text) {
    DepthCheck check;
    if (!json::sax_parse(text, &check, json::input_format_t::json, true, false) || check.too_deep)
        return json(json::value_t::discarded);
    return json::parse(text, nullptr, false);
}

std::string json_text(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace agente
