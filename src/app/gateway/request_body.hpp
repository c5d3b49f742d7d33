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
    static std::optional<RequestBody> parse(std::string_view text, std::string& problem);

    const std::string& model() const { return model_; }
    bool stream() const { return stream_; }
    // A stream whose client asked for OpenAI's last chunk with the usage
    // (stream_options.include_usage = true).
    bool wants_usage() const { return wants_usage_; }

    // The body to send to a target that calls the model `model_json`: the name as a JSON string,
    // quotes and escapes included (Target::model_json). `ask_usage`: a stream also asks the upstream
    // for its usage (stream_options.include_usage = true, the client's other stream_options kept),
    // so that it can be charged whether or not the client wants it.
    std::string with_model(std::string_view model_json, bool ask_usage = false) const;

    // Bytes [from, to) of the text replaced by `text`.
    struct Splice {
        std::size_t from = 0, to = 0;
        std::string_view text;   // a literal, or a Target's model_json
    };

private:
    std::string text_;
    std::string model_;
    bool stream_ = false;
    bool wants_usage_ = false;
    Splice usage_;   // how a stream asks for the usage; empty text: the client asked itself
    // [model_from_, model_to_) of text_ is the value of the top-level "model", `"name"` with its
    // quotes. It is what with_model() replaces; the blanks around it stay.
    std::size_t model_from_ = 0, model_to_ = 0;
};

}  // namespace agente::gateway
