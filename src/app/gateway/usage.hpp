// The tokens an upstream says a call used: OpenAI's "usage" object (prompt_tokens and
// completion_tokens; input_tokens and output_tokens in the newer shape), in a whole answer or in a
// stream's last chunk (sent when the request asks for stream_options.include_usage, which the
// gateway does for every stream unless the provider's stream_include_usage is false, or always by
// some providers). Read for /metrics and for the client keys' token limits.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agente::gateway {

struct TokenUsage {
    std::uint64_t in = 0;    // prompt (input) tokens
    std::uint64_t out = 0;   // completion (output) tokens

    TokenUsage& operator+=(const TokenUsage& o) {
        in += o.in;
        out += o.out;
        return *this;
    }
};

// The usage in a JSON object's top-level "usage"; nothing when there is none (or the text is not
// JSON). Texts without the word "usage" are not parsed at all. `capacity`: the bytes allocated from
// json.data() on; with app::json_padding more than the text, it is parsed where it lies, not copied.
std::optional<TokenUsage> usage_of(std::string_view json, std::size_t capacity = 0);
// Whether the key "usage" may be in `text` (the quoted word occurs), cheaply: most stream events
// need no closer look.
bool mentions_usage(std::string_view text);
// True for OpenAI's last chunk of a stream asked for its usage: no choices ("choices": []), a usage
// object. `data`: the event's data.
bool is_usage_chunk(std::string_view data);
// Appends a stream's event to `out` without the "usage":null member OpenAI adds to every chunk of a
// stream asked for its usage: for a client that did not ask, which would not get it from OpenAI. Only
// OpenAI's compact spelling (`,"usage":null`) is taken out; in valid JSON it can only be a member,
// never text inside a string (whose quotes are escaped).
void append_without_null_usage(std::string& out, std::string_view event);
// The same for a usage object already parsed (CompletionResult::usage); nothing for null.
std::optional<TokenUsage> usage_in_object(const nlohmann::json& usage);

}  // namespace agente::gateway
