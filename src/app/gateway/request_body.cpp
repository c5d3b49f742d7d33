#include "app/gateway/request_body.hpp"

#include "app/common/padded_json.hpp"
#include "app/json_text.hpp"

#include <agente/handler.hpp>

#include <simdjson.h>

#include <utility>

namespace agente::gateway {

namespace {

namespace od = simdjson::ondemand;
static_assert(app::json_padding == simdjson::SIMDJSON_PADDING);
static_assert(min_body_padding >= app::json_padding, "the core's request bodies are read in place");
using simdjson::error_code;

// Reads a value whole, and so checks it: On-Demand only checks what is read. Numbers are read as
// doubles, which every valid JSON number has (an integer no 64 bits hold is still valid JSON, and
// passes through as written). Nesting is bounded here, as this recursion must be, and below the
// parser's own 1024 levels (which it asserts on in a debug build rather than reporting).

// `depth`: the level `v` is at, counting containers only (as parse_json() does).
error_code check(od::value v, int depth) {
    od::json_type type;
    if (auto e = v.type().get(type)) return e;
    bool container = type == od::json_type::array || type == od::json_type::object;
    if (container && depth > max_json_depth) return simdjson::DEPTH_ERROR;
    switch (type) {
        case od::json_type::array: {
            od::array a;
            if (auto e = v.get_array().get(a)) return e;
            for (auto element : a) {
                od::value x;
                if (auto e = element.get(x)) return e;
                if (auto e = check(x, depth + 1)) return e;
            }
            return simdjson::SUCCESS;
        }
        case od::json_type::object: {
            od::object o;
            if (auto e = v.get_object().get(o)) return e;
            for (auto field : o) {
                std::string_view key;
                od::value x;
                if (auto e = field.unescaped_key().get(key)) return e;
                if (auto e = field.value().get(x)) return e;
                if (auto e = check(x, depth + 1)) return e;
            }
            return simdjson::SUCCESS;
        }
        case od::json_type::number: {
            double d;
            return v.get_double().get(d);
        }
        case od::json_type::string: {
            std::string_view s;
            return v.get_string().get(s);
        }
        case od::json_type::boolean: {
            bool b;
            return v.get_bool().get(b);
        }
        case od::json_type::null: {
            bool null = false;
            if (auto e = v.is_null().get(null)) return e;
            return null ? simdjson::SUCCESS : simdjson::TAPE_ERROR;
        }
    }
    return simdjson::TAPE_ERROR;
}

// What the gateway reads of a body: the top-level "model" (its value and where its token lies),
// "stream", and where "stream_options" says (or could say) include_usage. Nothing else is kept.
struct Fields {
    bool model_is_string = false, stream_ok = true, stream = false;
    std::string model;
    std::string_view model_token;  // as written, quotes included, maybe with blanks after it
    // The last "stream_options": what it holds of include_usage, and where to ask for it.
    bool options_seen = false, options_null = false, options_object = false, options_empty = true;
    bool include_usage = false, usage_seen = false;
    std::string_view options_token;   // null: the token; an object: its "{" onwards
    std::string_view usage_token;     // include_usage's boolean token, when it has one
};

// A stream_options object's fields, each checked; include_usage noted when it is a boolean.
error_code read_options(od::object options, Fields& f) {
    f.options_empty = true;
    for (auto field : options) {
        std::string_view key;
        od::value v;
        if (auto e = field.unescaped_key().get(key)) return e;
        if (auto e = field.value().get(v)) return e;
        f.options_empty = false;
        error_code e = simdjson::INCORRECT_TYPE;
        if (key == "include_usage") {
            f.usage_seen = true;
            std::string_view token = v.raw_json_token();
            e = v.get_bool().get(f.include_usage);
            f.usage_token = e ? std::string_view() : token;
        }
        if (e == simdjson::INCORRECT_TYPE) e = check(v, 3);
        if (e) return e;
    }
    return simdjson::SUCCESS;
}

error_code read_stream_options(od::value v, Fields& f) {
    f.options_seen = true;
    f.options_token = v.raw_json_token();
    od::json_type type;
    if (auto e = v.type().get(type)) return e;
    f.options_null = type == od::json_type::null;
    f.options_object = type == od::json_type::object;
    f.include_usage = f.usage_seen = false;
    f.usage_token = {};
    if (!f.options_object) return check(v, 2);   // another type is the upstream's to refuse
    od::object options;
    if (auto e = v.get_object().get(options)) return e;
    return read_options(options, f);
}

// The top-level fields in order, so that a duplicate key counts as the last one, as in a tree; every
// value is checked on the way.
error_code read_fields(od::object top, Fields& f) {
    for (auto field : top) {
        std::string_view key, name;
        od::value v;
        if (auto e = field.unescaped_key().get(key)) return e;
        if (auto e = field.value().get(v)) return e;
        // A value of another type is left unread by the failed get, and checked below as any other.
        error_code e = simdjson::INCORRECT_TYPE;
        if (key == "model") {
            f.model_token = v.raw_json_token();
            e = v.get_string().get(name);
            f.model_is_string = !e;
            f.model.assign(name);
        } else if (key == "stream") {
            e = v.get_bool().get(f.stream);
            f.stream_ok = !e;
        } else if (key == "stream_options") {
            // Read and checked whole, or refused: its INCORRECT_TYPE (a malformed atom inside)
            // must not send this half-read value through check() again, which On-Demand forbids.
            if (auto bad = read_stream_options(v, f)) return bad;
            continue;
        }
        if (e == simdjson::INCORRECT_TYPE) e = check(v, 2);
        if (e) return e;
    }
    return simdjson::SUCCESS;
}

std::string_view without_trailing_blanks(std::string_view t) {
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\n' || t.back() == '\r'))
        t.remove_suffix(1);
    return t;
}

// How `text` asks the upstream for its usage: nothing to change when the client asked itself;
// else its include_usage set to true, a member added to its stream_options, a null stream_options
// replaced, or a stream_options added as the body's first member. A stream_options of another type,
// or an include_usage that is no boolean, is left for the upstream to refuse, as it would the
// client's own.
RequestBody::Splice usage_splice(std::string_view text, const Fields& f) {
    RequestBody::Splice none;
    if (!f.stream || f.include_usage) return none;
    auto at = [&](std::string_view token) { return static_cast<std::size_t>(token.data() - text.data()); };
    if (!f.options_seen) {
        std::size_t brace = text.find('{');
        return {brace + 1, brace + 1, "\"stream_options\":{\"include_usage\":true},"};
    }
    if (f.options_null) {
        std::string_view token = without_trailing_blanks(f.options_token);
        return {at(token), at(token) + token.size(), "{\"include_usage\":true}"};
    }
    if (!f.options_object || (f.usage_seen && f.usage_token.empty())) return none;   // a non-boolean: refused upstream
    if (!f.usage_token.empty()) {
        std::string_view token = without_trailing_blanks(f.usage_token);
        return {at(token), at(token) + token.size(), "true"};
    }
    std::size_t brace = at(f.options_token) + 1;
    if (f.options_empty) return {brace, brace, "\"include_usage\":true"};
    return {brace, brace, "\"include_usage\":true,"};
}

// Reads the whole text with simdjson's On-Demand parser: its structural index is found in blocks of
// 64 bytes, then the walk visits every value once (21 KB of chat history: ~10 µs, where nlohmann's
// SAX scan, a byte at a time, took 253 µs). `object` says whether the text is a JSON object.
error_code read_body(od::parser& parser, const simdjson::padded_string_view& in, bool& object, Fields& f) {
    od::document doc;
    if (auto e = parser.iterate(in).get(doc)) return e;
    od::json_type type;
    if (auto e = doc.type().get(type)) return e;
    object = type == od::json_type::object;
    if (!object) return simdjson::SUCCESS;  // refused as it is, whatever follows its first byte
    od::object top;
    if (auto e = doc.get_object().get(top)) return e;
    if (auto e = read_fields(top, f)) return e;
    const char* after = nullptr;  // in bounds only if a token follows the object
    return doc.current_location().get(after) ? simdjson::SUCCESS : simdjson::TRAILING_CONTENT;
}

}  // namespace

std::optional<RequestBody> RequestBody::parse(std::string_view body, std::string& problem, std::size_t padding) {
    RequestBody b;
    if (padding >= app::json_padding) b.view_ = body;
    else b.copy_ = app::padded_copy(body);
    std::string_view text = b.text();
    simdjson::padded_string_view in(text.data(), text.size(), text.size() + app::json_padding);
    bool object = false;
    Fields f;
    // One parser per worker thread, its buffers reused; sized by the largest body so far (about 6
    // bytes per byte of body), so one that a huge body grew is let go rather than kept.
    thread_local od::parser parser;
    error_code error = read_body(parser, in, object, f);
    if (parser.capacity() > 1024 * 1024) parser = od::parser{};
    problem = error == simdjson::DEPTH_ERROR ? "request body nests deeper than 1000 levels"
              : error                        ? "request body is not valid JSON"
              : !object                      ? "request body must be a JSON object"
              : !f.model_is_string           ? "\"model\" (a string) is required"
              : !f.stream_ok                 ? "\"stream\" must be a boolean"
                                             : "";
    if (!problem.empty()) return std::nullopt;
    auto token = without_trailing_blanks(f.model_token);
    b.model_from_ = static_cast<std::size_t>(token.data() - text.data());
    b.model_to_ = b.model_from_ + token.size();
    b.model_ = std::move(f.model);
    b.stream_ = f.stream;
    b.wants_usage_ = f.stream && f.include_usage;
    b.usage_ = usage_splice(text, f);
    return b;
}

std::string_view RequestBody::with_model(std::string_view model_json, bool ask_usage, std::string& out) const {
    std::string_view text = this->text();
    Splice model{model_from_, model_to_, model_json};
    bool ask = ask_usage && !usage_.text.empty();
    if (!ask && text.substr(model.from, model.to - model.from) == model_json) return text;
    out.clear();
    out.reserve(text.size() + model_json.size() + 40);
    if (!ask) {
        out.append(text, 0, model.from).append(model.text).append(text, model.to);
        return out;
    }
    // The two never overlap: one is the value of "model", the other in or before "stream_options".
    const Splice* first = &model;
    const Splice* second = &usage_;
    if (usage_.from < model.from) std::swap(first, second);
    out.append(text, 0, first->from).append(first->text);
    out.append(text, first->to, second->from - first->to).append(second->text).append(text, second->to);
    return out;
}

}  // namespace agente::gateway
