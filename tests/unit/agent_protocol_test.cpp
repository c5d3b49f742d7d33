// The agent's wire formats: JSON-RPC parsing and errors, message reading in both A2A dialects and
// the seed's shape, and the cards built from settings.
#include "app/agent/base_url.hpp"
#include "app/agent/protocol.hpp"

#include <gtest/gtest.h>

#include <set>

namespace agente::agent {
namespace {

RpcError error_of(std::string_view body) {
    auto r = parse_rpc(body);
    EXPECT_TRUE(std::holds_alternative<RpcError>(r)) << body;
    return std::holds_alternative<RpcError>(r) ? std::get<RpcError>(r) : RpcError{0, "", nullptr};
}

TEST(AgentJsonRpc, ParsesTheSeedsRequest) {
    auto r = parse_rpc(R"({"jsonrpc":"2.0","id":"test-1","method":"execute","params":{"messages":[]}})");
    ASSERT_TRUE(std::holds_alternative<RpcCall>(r));
    auto& call = std::get<RpcCall>(r);
    EXPECT_EQ(call.id, "test-1");
    EXPECT_EQ(call.method, "execute");
    EXPECT_TRUE(call.params.is_object());
}

TEST(AgentJsonRpc, ErrorsHaveTheStandardCodesAndKeepTheId) {
    EXPECT_EQ(error_of("{oops").code, rpc_code::parse_error);
    EXPECT_TRUE(error_of("{oops").id.is_null());
    EXPECT_EQ(error_of("[]").code, rpc_code::invalid_request);
    EXPECT_EQ(error_of(R"({"jsonrpc":"2.0","id":[1],"method":"x"})").code, rpc_code::invalid_request);
    RpcError e = error_of(R"({"jsonrpc":"1.0","id":5,"method":"x"})");
    EXPECT_EQ(e.code, rpc_code::invalid_request);
    EXPECT_EQ(e.id, 5);
    e = error_of(R"({"jsonrpc":"2.0","id":"a","method":3})");
    EXPECT_EQ(e.code, rpc_code::invalid_request);
    EXPECT_EQ(e.id, "a");
    EXPECT_EQ(error_of(R"({"jsonrpc":"2.0","id":1,"method":"x","params":"s"})").code, rpc_code::invalid_request);
}

TEST(AgentJsonRpc, AnswersAreJsonRpc) {
    auto ok = json::parse(rpc_result("i", json{{"a", 1}}));
    EXPECT_EQ(ok["jsonrpc"], "2.0");
    EXPECT_EQ(ok["id"], "i");
    EXPECT_EQ(ok["result"]["a"], 1);
    auto err = json::parse(rpc_error(nullptr, -32700, "Parse error"));
    EXPECT_TRUE(err["id"].is_null());
    EXPECT_EQ(err["error"]["code"], -32700);
    EXPECT_FALSE(err["error"].contains("data"));
    EXPECT_EQ(rpc_id(R"({"id": 42, "method": "x"})"), 42);
    EXPECT_TRUE(rpc_id("garbage").is_null());
}

TEST(AgentJsonRpc, TheIdOfABodyIsItsTopLevelIdReadWithoutATree) {
    EXPECT_EQ(rpc_id(R"({"method": "x", "params": {"id": 1, "a": [{"id": 2}]}, "id": "top"})"), "top");
    EXPECT_EQ(rpc_id(R"({"jsonrpc": "2.0", "id": null})"), nullptr);
    EXPECT_EQ(rpc_id(R"({"id": 1.5})"), 1.5);
    EXPECT_EQ(rpc_id(R"({"id": -3, "then": broken)"), -3);   // found before the body went wrong
    for (auto body : {R"({"id": {"a": 1}})", R"({"id": [1]})", R"({"id": true})", R"([{"id": 1}])", R"("id")",
                      R"({"params": [1, 2})"})
        EXPECT_TRUE(rpc_id(body).is_null()) << body;
    // Within a bound: an id past it is not looked for.
    std::string late = R"({"params": ")" + std::string(1000, 'x') + R"(", "id": 9})";
    EXPECT_EQ(rpc_id(late), 9);
    EXPECT_TRUE(rpc_id(late, 100).is_null());
    EXPECT_EQ(rpc_id(R"({"id": 9, "params": ")" + std::string(1000, 'x') + "\"}", 20), 9);
}

// A body with two "id" members: the answers that echo rpc_id (401, 408, 503) carry the id that
// parse_rpc's tree reads, the last one, valid or not (found by tests/fuzz/agent_rpc.cpp: the first
// was echoed, 2 where every other answer said 2.5).
TEST(AgentJsonRpc, TheIdOfABodyWithTwoIsTheLastAsInTheFullParse) {
    for (auto body : {R"({"jsonrpc":"2.0","id":2,"id":2.5,"method":"tks/get","params":[5,2]})",
                      R"({"jsonrpc":"2.0","id":{"a":1},"id":"x","method":"m"})",
                      R"({"jsonrpc":"2.0","id":"x","id":{"a":1},"method":"m"})",
                      R"({"jsonrpc":"2.0","id":"x","id":[1],"method":"m"})",
                      R"({"jsonrpc":"2.0","id":"x","id":true,"method":"m"})",
                      R"({"jsonrpc":"2.0","id":"x","params":{"id":3},"id":null,"method":"m"})"}) {
        auto parsed = parse_rpc(body);
        json full = std::holds_alternative<RpcCall>(parsed) ? std::get<RpcCall>(parsed).id
                                                            : std::get<RpcError>(parsed).id;
        EXPECT_EQ(rpc_id(body), full) << body;
    }
    EXPECT_EQ(rpc_id(R"({"id":2,"id":2.5})"), 2.5);
}

TEST(AgentJsonRpc, MethodNamesOfBothProtocolVersions) {
    Dialect d;
    EXPECT_EQ(method_of("execute", d), Method::execute);
    EXPECT_EQ(method_of("SendMessage", d), Method::send);
    EXPECT_EQ(d, Dialect::v1);
    EXPECT_EQ(method_of("message/stream", d), Method::stream);
    EXPECT_EQ(d, Dialect::v03);
    EXPECT_EQ(method_of("tasks/get", d), Method::get);
    EXPECT_EQ(method_of("CancelTask", d), Method::cancel);
    EXPECT_EQ(method_of("tasks/resubscribe", d), Method::unsupported);
    EXPECT_EQ(method_of("SubscribeToTask", d), Method::unsupported);
    EXPECT_EQ(method_of("tasks/pushNotificationConfig/set", d), Method::push_config);
    EXPECT_EQ(method_of("CreateTaskPushNotificationConfig", d), Method::push_config);
    EXPECT_EQ(method_of("tasks/send", d), Method::unknown);
}

TEST(AgentMessages, ReadsTheSeedsShapeAndOpenAIs) {
    std::vector<ChatMessage> out;
    auto seed = json::parse(R"([{"kind":"message","role":"user","parts":[{"kind":"text","text":"Help"},{"kind":"text","text":"me"}]},
                               {"role":"agent","parts":[{"kind":"data","data":{}}]},
                               {"role":"user","content":"plain"}])");
    ASSERT_FALSE(read_messages(seed, out));
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].role, "user");
    EXPECT_EQ(out[0].content, "Help\nme");
    EXPECT_EQ(out[1].role, "assistant");
    EXPECT_EQ(out[2].content, "plain");
    out.clear();
    EXPECT_TRUE(read_messages(json::array(), out));
    EXPECT_TRUE(read_messages(json::parse(R"([{"role":"robot","content":"x"}])"), out));
    EXPECT_TRUE(read_messages(json::parse(R"([{"role":"user"}])"), out));
    EXPECT_TRUE(read_messages(json::parse(R"([{"role":"user","parts":[{"kind":"text"}]}])"), out));
}

TEST(AgentMessages, ReadsA2AMessagesOfBothVersions) {
    IncomingMessage v1;
    ASSERT_FALSE(read_a2a_message(json::parse(R"({"messageId":"m","role":"ROLE_USER","contextId":"c","parts":[{"text":"hi"}]})"), v1));
    EXPECT_EQ(v1.chat.content, "hi");
    EXPECT_EQ(v1.context_id, "c");
    IncomingMessage v03;
    ASSERT_FALSE(read_a2a_message(json::parse(R"({"kind":"message","role":"user","parts":[{"kind":"text","text":"yo"}]})"), v03));
    EXPECT_EQ(v03.chat.content, "yo");
    IncomingMessage bad;
    EXPECT_TRUE(read_a2a_message(json::parse(R"({"role":"ROLE_USER","parts":[]})"), bad));
    EXPECT_TRUE(read_a2a_message(json::parse(R"({"parts":[{"text":"x"}]})"), bad));
}

// Client-chosen ids are stored and logged: bounded, and without control characters.
TEST(AgentIds, BoundedInLengthWithoutControlCharacters) {
    EXPECT_FALSE(id_problem("contextId", ""));
    EXPECT_FALSE(id_problem("contextId", std::string(max_id_length, 'a')));
    EXPECT_FALSE(id_problem("contextId", "ctx-\u00e9 A.1"));
    EXPECT_EQ(id_problem("contextId", std::string(max_id_length + 1, 'a')), "\"contextId\" is longer than 128 bytes");
    EXPECT_EQ(id_problem("id", "a\nb"), "\"id\" has a control character");
    EXPECT_TRUE(id_problem("id", "a\x7f"));
    IncomingMessage m;
    json long_context = {{"role", "user"}, {"parts", {{{"text", "x"}}}}, {"contextId", std::string(5'000'000, 'c')}};
    EXPECT_EQ(read_a2a_message(long_context, m), "\"message.contextId\" is longer than 128 bytes");
    json long_message_id = {{"role", "user"}, {"parts", {{{"text", "x"}}}}, {"messageId", std::string(200, 'm')}};
    EXPECT_TRUE(read_a2a_message(long_message_id, m));
    json long_task_id = {{"role", "user"}, {"parts", {{{"text", "x"}}}}, {"taskId", std::string(200, 't')}};
    EXPECT_TRUE(read_a2a_message(long_task_id, m));
}

// Context ids are capabilities: random version-4 UUIDs from the OS's generator, never repeated.
TEST(AgentIds, NewIdsAreVersion4Uuids) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        std::string id = new_id();
        ASSERT_EQ(id.size(), 36u);
        EXPECT_EQ(id[14], '4');
        EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
        seen.insert(id);
    }
    EXPECT_EQ(seen.size(), 1000u);
}

// The card's URL comes from Host only when Host is a host (RFC 9110 uri-host [":" port]).
TEST(AgentCardUrl, FromHostOnlyWhenItIsAHost) {
    EXPECT_EQ(base_url_from_host("http", "127.0.0.1:8000"), "http://127.0.0.1:8000");
    EXPECT_EQ(base_url_from_host("https", "agents.example.com"), "https://agents.example.com");
    EXPECT_EQ(base_url_from_host("http", "[::1]:8080"), "http://[::1]:8080");
    EXPECT_EQ(base_url_from_host("http", "xn--bcher-kva.example:443"), "http://xn--bcher-kva.example:443");
    for (std::string_view bad : {"", "evil.example/phish?x=", "user@evil.example", "a b", "h:99999", "h:0", "h:",
                                 "h:80:90", "h\xff", "h\r\nX-Injected: 1", "evil.example#", "[::1"})
        EXPECT_EQ(base_url_from_host("http", bad), "") << bad;
    AgentSettings s;
    EXPECT_EQ(agent_card(s, "")["supportedInterfaces"][0]["url"], "/tasks/send");   // relative: resolved by the client
    EXPECT_EQ(legacy_agent_card(s, "")["url"], "/tasks/send");
}

TEST(AgentObjects, TasksAndEventsInEachDialect) {
    json t1 = send_result(Dialect::v1, task_object(Dialect::v1, "t", "c", TaskState::completed, "done", "ts"));
    EXPECT_EQ(t1["task"]["status"]["state"], "TASK_STATE_COMPLETED");
    EXPECT_EQ(t1["task"]["artifacts"][0]["parts"][0], json({{"text", "done"}}));
    json t03 = send_result(Dialect::v03, task_object(Dialect::v03, "t", "c", TaskState::canceled, "", "ts"));
    EXPECT_EQ(t03["kind"], "task");
    EXPECT_EQ(t03["status"]["state"], "canceled");
    EXPECT_FALSE(t03.contains("artifacts"));
    EXPECT_EQ(status_update_event(Dialect::v1, "t", "c", TaskState::working, false, "")["statusUpdate"]["status"]["state"],
              "TASK_STATE_WORKING");
    json u = status_update_event(Dialect::v03, "t", "c", TaskState::completed, true, "");
    EXPECT_EQ(u["kind"], "status-update");
    EXPECT_TRUE(u["final"].get<bool>());
    json a = artifact_update_event(Dialect::v03, "t", "c", "a", "tok", true, false);
    EXPECT_EQ(a["kind"], "artifact-update");
    EXPECT_EQ(a["artifact"]["parts"][0]["kind"], "text");
    EXPECT_EQ(parse_state("working"), TaskState::working);
    EXPECT_FALSE(parse_state("TASK_STATE_WORKING"));
    EXPECT_NE(new_id(), new_id());
    EXPECT_EQ(new_id().size(), 36u);
}

TEST(AgentObjects, CitationsAreADataPartAfterTheReplysText) {
    json cites = json::array({{{"index", 1}, {"filename", "bees.md"}}});
    json v1 = task_object(Dialect::v1, "t", "c", TaskState::completed, "Bees [1].", "now", cites);
    EXPECT_EQ(v1["artifacts"][0]["parts"][1], (json{{"data", {{"citations", cites}}}, {"mediaType", "application/json"}}));
    json v03 = task_object(Dialect::v03, "t", "c", TaskState::completed, "Bees [1].", "now", cites);
    EXPECT_EQ(v03["artifacts"][0]["parts"][1], (json{{"kind", "data"}, {"data", {{"citations", cites}}}}));
    // Not grounded: the text alone, as before.
    EXPECT_EQ(task_object(Dialect::v1, "t", "c", TaskState::completed, "hi", "now")["artifacts"][0]["parts"].size(), 1u);
    json seed = execute_result("Bees [1].", "c", json::array());
    EXPECT_EQ(seed["parts"][1], (json{{"kind", "data"}, {"data", {{"citations", json::array()}}}}));
    json last = artifact_parts_event(Dialect::v1, "t", "c", "t-reply", json::array({citations_part(Dialect::v1, cites)}),
                                     true, true)["artifactUpdate"];
    EXPECT_TRUE(last["lastChunk"]);
    EXPECT_EQ(last["artifact"]["parts"][0]["data"]["citations"], cites);
}

TEST(AgentCard, BuiltFromSettings) {
    AgentSettings s;
    s.name = "Studly";
    s.version = "2.0.0";
    s.organization = "Acme";
    AgentDef a;
    a.id = "studly";
    a.name = "Studly";
    a.description = "plans";
    a.skills.push_back({"plan", "Plans", "makes plans", {"study"}, {"Help me"}});
    s.agents.push_back(a);
    AgentDef b;
    b.id = "chat";
    b.name = "Chat";
    b.description = "talks";
    s.agents.push_back(b);
    json card = agent_card(s, "http://h:1");
    EXPECT_EQ(card["name"], "Studly");
    EXPECT_EQ(card["supportedInterfaces"][0]["url"], "http://h:1/tasks/send");
    EXPECT_EQ(card["supportedInterfaces"][0]["protocolBinding"], "JSONRPC");
    EXPECT_EQ(card["supportedInterfaces"][0]["protocolVersion"], "1.0");
    EXPECT_TRUE(card["capabilities"]["streaming"].get<bool>());
    ASSERT_EQ(card["skills"].size(), 2u);
    EXPECT_EQ(card["skills"][0]["examples"][0], "Help me");
    EXPECT_EQ(card["skills"][1]["id"], "chat");   // an agent without skills is one
    EXPECT_EQ(card["provider"]["organization"], "Acme");
    EXPECT_FALSE(card.contains("url"));            // v1.0 cards have interfaces, not a url
    s.url = "https://agents.example.com";
    json legacy = legacy_agent_card(s, "http://h:1");
    EXPECT_EQ(legacy["url"], "https://agents.example.com/tasks/send");
    EXPECT_EQ(legacy["preferredTransport"], "JSONRPC");
}

}  // namespace
}  // namespace agente::agent
