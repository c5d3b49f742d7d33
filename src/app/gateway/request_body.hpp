// A JSON request body as the gateway forwards it: checked once, then sent upstream as it came, with
// only the value of its top-level "model" replaced per target. Key order, number spellings and every
// field the gateway does not know pass through byte for byte, and no JSON tree is built per request
// (the tree and its re-serialization were a fifth of a proxied request's user-space work).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace agente::gateway {

class RequestBody {
public:
    // `text` must be a JSON object with a string "model" and, when present, a boolean "stream".
    // Otherwise: nullopt, and `problem` says what is wrong in words for a 400 answer.
    // With `padding` allocated bytes after the text enough for simdjson (Request::body_padding()),
    // it is read in place and kept as a view, which must outlive this: a request's body lasts as
    // long as its handler call, so a RequestBody kept longer is parsed with no padding. Otherwise
    // the text is copied once.
    static std::optional<RequestBody> parse(std::string_view text, std::string& problem, std::size_t padding = 0);

    std::string_view text() const { return copy_.empty() ? view_ : std::string_view(copy_); }

    const std::string& model() const { return model_; }
    bool stream() const { return stream_; }
    // A stream whose client asked for OpenAI's last chunk with the usage
    // (stream_options.include_usage = true).
    bool wants_usage() const { return wants_usage_; }

    // The body to send to a target that calls the model `model_json`: the name as a JSON string,
    // quotes and escapes included (Target::model_json). `ask_usage`: a stream also asks the upstream
    // for its usage (stream_options.include_usage = true, the client's other stream_options kept),
    // so that it can be charged whether or not the client wants it. text() itself when that changes
    // nothing (the client named the target's model), else the new body, written into `out`.
    std::string_view with_model(std::string_view model_json, bool ask_usage, std::string& out) const;

    // Bytes [from, to) of the text replaced by `text`.
    struct Splice {
        std::size_t from = 0, to = 0;
        std::string_view text;   // a literal, or a Target's model_json
    };

private:
    std::string_view view_;   // the text read in place
    std::string copy_;        // or its copy, when it had no padding
    std::string model_;
    bool stream_ = false;
    bool wants_usage_ = false;
    Splice usage_;   // how a stream asks for the usage; empty text: the client asked itself
    // [model_from_, model_to_) of text() is the value of the top-level "model", `"name"` with its
    // quotes. It is what with_model() replaces; the blanks around it stay.
    std::size_t model_from_ = 0, model_to_ = 0;
};

}  // namespace agente::gateway
