#include "app/gateway/usage.hpp"

#include "app/json_text.hpp"

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include <string>

namespace agente::gateway {

namespace {

namespace od = simdjson::ondemand;

// The top-level "usage" of `text`, read in one pass over its fields.
bool read_usage(od::parser& parser, const simdjson::padded_string_view& text, TokenUsage& u) {
    od::document doc;
    od::object usage;
    if (parser.iterate(text).get(doc) || doc.find_field_unordered("usage").get_object().get(usage)) return false;
    for (auto field : usage) {
        std::string_view key;
        std::uint64_t n = 0;
        if (field.unescaped_key().get(key)) return false;
        bool in = key == "prompt_tokens" || key == "input_tokens";
        bool out = key == "completion_tokens" || key == "output_tokens";
        if (!in && !out) continue;
        if (field.value().get_uint64().get(n)) return false;
        (in ? u.in : u.out) = n;
    }
    return true;
}

// Whether some "usage" in `json` is followed by an object: OpenAI puts "usage":null on every chunk
// of a stream asked for its usage, and those need no parse.
bool mentions_usage_object(std::string_view json) {
    constexpr std::string_view key = "\"usage\"";
    for (auto at = json.find(key); at != std::string_view::npos; at = json.find(key, at + key.size())) {
        auto value = json.find_first_not_of(" \t\r\n:", at + key.size());
        if (value != std::string_view::npos && json[value] == '{') return true;
    }
    return false;
}

// A copy simdjson may read past the end of, in blocks.
std::string padded_copy(std::string_view json) {
    std::string text;
    text.reserve(json.size() + simdjson::SIMDJSON_PADDING);
    text.assign(json);
    return text;
}

simdjson::padded_string_view padded_view(const std::string& text) {
    return simdjson::padded_string_view(text.data(), text.size(), text.capacity());
}

}  // namespace

std::optional<TokenUsage> usage_of(std::string_view json) {
    if (!mentions_usage_object(json)) return std::nullopt;   // most stream chunks
    std::string text = padded_copy(json);
    thread_local od::parser parser;
    TokenUsage u;
    bool found = read_usage(parser, padded_view(text), u);
    if (parser.capacity() > 1024 * 1024) parser = od::parser{};   // a huge answer's buffers are let go
    if (!found) return std::nullopt;
    return u;
}

bool is_usage_chunk(std::string_view data) {
    if (!mentions_usage_object(data)) return false;   // every other chunk
    std::string text = padded_copy(data);
    thread_local od::parser parser;
    od::document doc;
    od::object top;
    if (parser.iterate(padded_view(text)).get(doc) ||
        doc.get_object().get(top))
        return false;
    bool no_choices = false, usage = false;
    for (auto field : top) {
        std::string_view key;
        od::value v;
        if (field.unescaped_key().get(key) || field.value().get(v)) return false;
        if (key == "choices") {
            od::array choices;
            std::size_t n = 0;
            no_choices = !v.get_array().get(choices) && !choices.count_elements().get(n) && n == 0;
        } else if (key == "usage") {
            od::json_type type;
            usage = !v.type().get(type) && type == od::json_type::object;
        }
    }
    return no_choices && usage;
}

void append_without_null_usage(std::string& out, std::string_view event) {
    constexpr std::string_view member = ",\"usage\":null";
    auto at = event.find(member);
    if (at == std::string_view::npos) {
        out.append(event);
        return;
    }
    out.append(event.substr(0, at)).append(event.substr(at + member.size()));
}

std::optional<TokenUsage> usage_in_object(const nlohmann::json& usage) {
    if (!usage.is_object()) return std::nullopt;
    return usage_of(json_text(nlohmann::json{{"usage", usage}}));   // the one reader of its fields
}

}  // namespace agente::gateway
