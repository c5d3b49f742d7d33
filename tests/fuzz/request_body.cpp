// The gateway's JSON body check (src/app/gateway/request_body.*) on any body a client sends. Besides
// the sanitizers' checks: an accepted body with its model replaced is accepted again, names the new
// model and keeps "stream" (what the gateway sends upstream is what it checked).
#include "app/gateway/request_body.hpp"
#include "app/json_text.hpp"
#include "require.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using agente::gateway::RequestBody;

namespace {

void same_but_model(const RequestBody& b, const std::string& model) {
    std::string problem;
    auto again = RequestBody::parse(b.with_model(agente::json_text(model)), problem);
    FUZZ_REQUIRE(again.has_value() && problem.empty());
    FUZZ_REQUIRE(again->model() == model && again->stream() == b.stream());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    std::string problem;
    auto b = RequestBody::parse(body, problem);
    FUZZ_REQUIRE(b.has_value() == problem.empty());
    if (!b) return 0;
    same_but_model(*b, b->model());
    same_but_model(*b, "fuzz \"model\" \\ \xc3\xa9");
    return 0;
}
