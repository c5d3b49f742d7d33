#include "app/gateway/usage.hpp"

#include "app/common/padded_json.hpp"
#include "app/json_text.hpp"

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include <string>

namespace agente::gateway {

namespace {

namespace od = simdjson::ondemand;
static_assert(app::json_padding == simdjson::SIMDJSON_PADDING);
constexpr std::size_t npos = std::string_view::npos;
constexpr std::string_view usage_word_text = "usage\"";   // the key's word and its closing quote

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

// Where `usage"` follows a quote in `text`, from `from` on; npos for nowhere. The search starts
// from the word, not the quote: std::string_view::find stops at each occurrence of the needle's first
// character, and a stream chunk has dozens of quotes but few u's.
std::size_t usage_word(std::string_view text, std::size_t from) {
    for (auto at = text.find(usage_word_text, from == 0 ? 1 : from); at != npos;
         at = text.find(usage_word_text, at + usage_word_text.size()))
        if (text[at - 1] == '"') return at;
    return npos;
}

// Whether some "usage" in `json` is followed by an object: OpenAI puts "usage":null on every chunk
// of a stream asked for its usage, and those need no parse.
bool mentions_usage_object(std::string_view json) {
    for (auto at = usage_word(json, 0); at != npos; at = usage_word(json, at + 1)) {
        auto value = json.find_first_not_of(" \t\r\n:", at + usage_word_text.size());
        if (value != npos && json[value] == '{') return true;
    }
    return false;
}

simdjson::padded_string_view padded_view(const std::string& text) {
    return simdjson::padded_string_view(text.data(), text.size(), text.capacity());
}

}  // namespace

std::optional<TokenUsage> usage_of(std::string_view json, std::size_t capacity) {
    if (!mentions_usage_object(json)) return std::nullopt;   // most stream chunks
    std::string copy;
    if (capacity < json.size() + app::json_padding) {
        copy = app::padded_copy(json);
        json = copy;
        capacity = copy.capacity();
    }
    thread_local od::parser parser;
    TokenUsage u;
    bool found = read_usage(parser, simdjson::padded_string_view(json.data(), json.size(), capacity), u);
    if (parser.capacity() > 1024 * 1024) parser = od::parser{};   // a huge answer's buffers are let go
    if (!found) return std::nullopt;
    return u;
}

bool mentions_usage(std::string_view text) { return usage_word(text, 0) != npos; }

bool is_usage_chunk(std::string_view data) {
    if (!mentions_usage_object(data)) return false;   // every other chunk
    std::string text = app::padded_copy(data);
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
