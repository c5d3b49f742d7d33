// The agent's JSON-RPC (src/app/agent/protocol.*) on any body POSTed to /tasks/send: the framing, then
// what the routes read of the params (the seed's messages, an A2A message) and the answers built from
// them. Besides the sanitizers' checks: every answer is JSON that reads back with the request's id.
#include "app/agent/protocol.hpp"
#include "app/json_text.hpp"
#include "require.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

using namespace agente::agent;

namespace {

// An answer is one JSON-RPC object carrying the id it was given.
void answers(const std::string& text, const json& id) {
    json back = agente::parse_json(text);
    FUZZ_REQUIRE(back.is_object() && back.contains("jsonrpc") && back.contains("id") && back["id"] == id);
}

void read_params(const RpcCall& call, Dialect d) {
    if (!call.params.is_object()) return;
    if (call.params.contains("messages")) {
        std::vector<ChatMessage> out;
        auto problem = read_messages(call.params["messages"], out);
        FUZZ_REQUIRE(problem.has_value() || !out.empty());
    }
    if (call.params.contains("message")) {
        IncomingMessage in;
        if (read_a2a_message(call.params["message"], in)) return;
        FUZZ_REQUIRE(!in.chat.content.empty());
        // The ids come from the client; the answers carry them back.
        auto task = task_object(d, in.task_id, in.context_id, TaskState::completed, in.chat.content, now_iso8601());
        answers(rpc_result(call.id, send_result(d, task)), call.id);
        answers(rpc_result(call.id, status_update_event(d, in.task_id, in.context_id, TaskState::failed, true,
                                                        in.chat.content)), call.id);
        answers(rpc_result(call.id, artifact_update_event(d, in.task_id, in.context_id, in.message_id,
                                                          in.chat.content, true, false)), call.id);
        answers(rpc_result(call.id, execute_result(in.chat.content, in.context_id)), call.id);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    json id = rpc_id(body);  // what a deadline's answer echoes, read without the full checks
    auto parsed = parse_rpc(body);
    if (auto* err = std::get_if<RpcError>(&parsed)) {
        answers(rpc_error(err->id, err->code, err->message), err->id);
        return 0;
    }
    const RpcCall& call = std::get<RpcCall>(parsed);
    FUZZ_REQUIRE(call.id == id);
    answers(rpc_error(call.id, rpc_code::method_not_found, "Method not found: " + call.method), call.id);
    Dialect d;
    if (method_of(call.method, d) != Method::unknown) read_params(call, d);
    return 0;
}
