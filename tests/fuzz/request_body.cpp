// The gateway's JSON body check (src/app/gateway/request_body.*) on any body a client sends. Besides
// the sanitizers' checks: an accepted body with its model replaced is accepted again, names the new
// model and keeps "stream" (what the gateway sends upstream is what it checked).
#include "app/gateway/request_body.hpp"
#include "app/json_text.hpp"
#include "require.hpp"

#include <agente/handler.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

using agente::gateway::RequestBody;

namespace {

void same_but_model(const RequestBody& b, const std::string& model) {
    std::string problem, out;
    std::string model_json = agente::json_text(model);
    auto again = RequestBody::parse(b.with_model(model_json, false, out), problem);
    FUZZ_REQUIRE(again.has_value() && problem.empty());
    FUZZ_REQUIRE(again->model() == model && again->stream() == b.stream());
}

// Read in place, as the core's padded bodies are: the same answer, and nothing copied.
void same_in_place(std::string_view body, const std::optional<RequestBody>& copied) {
    std::string text;
    text.reserve(body.size() + agente::min_body_padding);
    text.assign(body);
    std::string problem;
    auto b = RequestBody::parse(text, problem, text.capacity() - text.size());
    FUZZ_REQUIRE(b.has_value() == copied.has_value());
    if (b) FUZZ_REQUIRE(b->text().data() == text.data() && b->model() == copied->model());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    std::string problem;
    auto b = RequestBody::parse(body, problem);
    FUZZ_REQUIRE(b.has_value() == problem.empty());
    same_in_place(body, b);
    if (!b) return 0;
    same_but_model(*b, b->model());
    same_but_model(*b, "fuzz \"model\" \\ \xc3\xa9");
    return 0;
}
