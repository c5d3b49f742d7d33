// The request body the gateway forwards: checked once, passed through byte for byte except for the
// value of its top-level "model".
#include "app/gateway/request_body.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using agente::gateway::RequestBody;

namespace {

std::string problem_of(const std::string& text) {
    std::string problem;
    EXPECT_FALSE(RequestBody::parse(text, problem).has_value()) << text;
    return problem;
}

RequestBody parsed(const std::string& text) {
    std::string problem;
    auto b = RequestBody::parse(text, problem);
    EXPECT_TRUE(b.has_value()) << text << ": " << problem;
    return b.value_or(*RequestBody::parse(R"({"model":"x"})", problem));
}

}  // namespace

TEST(RequestBody, ReplacesOnlyTheTopLevelModelAndKeepsEverythingElseAsItCame) {
    std::string text = R"({ "temperature" : 0.70, "model" : "public", "messages":[{"role":"user","content":"caf\u00e9","model":"inner"}],
  "seed": 12345678901234567890, "z_first_key": 1e2 })";
    RequestBody b = parsed(text);
    EXPECT_EQ(b.model(), "public");
    EXPECT_FALSE(b.stream());
    std::string out = b.with_model("kimi-k2");
    EXPECT_EQ(out, R"({ "temperature" : 0.70, "model" : "kimi-k2", "messages":[{"role":"user","content":"caf\u00e9","model":"inner"}],
  "seed": 12345678901234567890, "z_first_key": 1e2 })");
    auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["model"], "kimi-k2");
    EXPECT_EQ(j["messages"][0]["model"], "inner");
}

TEST(RequestBody, EscapesTheUpstreamModelAndReadsAnEscapedPublicOne) {
    RequestBody b = parsed(R"({"model":"a\"b\\c","stream":true})");
    EXPECT_EQ(b.model(), "a\"b\\c");
    EXPECT_TRUE(b.stream());
    EXPECT_EQ(b.with_model("x\"y"), R"({"model":"x\"y","stream":true})");
}

TEST(RequestBody, ModelAfterNumbersAndNestedValues) {
    // A number is read one character past its end; the key that follows must still be found exactly.
    RequestBody b = parsed(R"({"n":1,"o":{"model":2},"a":[1,2.5,{"model":"no"}],"model":"yes"})");
    EXPECT_EQ(b.model(), "yes");
    EXPECT_EQ(b.with_model("up"), R"({"n":1,"o":{"model":2},"a":[1,2.5,{"model":"no"}],"model":"up"})");
}

TEST(RequestBody, ADuplicateModelCountsAsTheLastOne) {
    RequestBody b = parsed(R"({"model":"first","model":"second"})");
    EXPECT_EQ(b.model(), "second");
    EXPECT_EQ(b.with_model("up"), R"({"model":"first","model":"up"})");
    EXPECT_EQ(nlohmann::json::parse(b.with_model("up"))["model"], "up");
}

TEST(RequestBody, AnEscapedKeyIsTheSameKeyAndAValueOfTheWrongTypeIsSkippedWhole) {
    RequestBody b = parsed(R"({"mod\u0065l":"esc","stream" : true })");
    EXPECT_EQ(b.model(), "esc");
    EXPECT_TRUE(b.stream());
    EXPECT_EQ(b.with_model("up"), R"({"mod\u0065l":"up","stream" : true })");
    RequestBody later = parsed(R"({"model":{"model":"inner","a":[1]},"model"  :"last" ,"n":1})");
    EXPECT_EQ(later.model(), "last");
    EXPECT_EQ(later.with_model("up"), R"({"model":{"model":"inner","a":[1]},"model"  :"up" ,"n":1})");
}

TEST(RequestBody, ALongBodyPassesThroughWhole) {
    std::string history;
    for (int i = 0; i < 2000; ++i) history += R"({"role":"user","content":"caf\u00e9 \"quoted\" ü"},)";
    history.pop_back();
    std::string text = R"({"messages":[)" + history + R"(],"model":"m","stream":true})";
    RequestBody b = parsed(text);
    EXPECT_EQ(b.model(), "m");
    EXPECT_TRUE(b.stream());
    EXPECT_EQ(b.with_model("up"), R"({"messages":[)" + history + R"(],"model":"up","stream":true})");
}

TEST(RequestBody, NumbersNoMachineTypeHoldsAreStillValidJson) {
    RequestBody b = parsed(R"({"model":"m","big":123456789012345678901234567890,"tiny":-1e-400,"e":1E+2})");
    EXPECT_EQ(b.with_model("up"), R"({"model":"up","big":123456789012345678901234567890,"tiny":-1e-400,"e":1E+2})");
}

TEST(RequestBody, DeepNestingIsRefusedWithoutExhaustingTheStack) {
    std::string deep = R"({"model":"a","x":)" + std::string(1 << 20, '[') + std::string(1 << 20, ']') + "}";
    EXPECT_EQ(problem_of(deep), "request body nests deeper than 1000 levels");
    std::string allowed = R"({"model":"a","x":)" + std::string(999, '[') + std::string(999, ']') + "}";
    std::string one_more = R"({"model":"a","x":)" + std::string(1000, '[') + std::string(1000, ']') + "}";
    EXPECT_EQ(problem_of(one_more), "request body nests deeper than 1000 levels");
    EXPECT_EQ(parsed(allowed).model(), "a");
}

TEST(RequestBody, RefusesWhatTheGatewayCannotForward) {
    EXPECT_EQ(problem_of(""), "request body is not valid JSON");
    EXPECT_EQ(problem_of(R"({"model":"a",})"), "request body is not valid JSON");
    EXPECT_EQ(problem_of(R"({"model":"a"} trailing)"), "request body is not valid JSON");
    EXPECT_EQ(problem_of(R"(["model","a"])"), "request body must be a JSON object");
    EXPECT_EQ(problem_of(R"("model")"), "request body must be a JSON object");
    EXPECT_EQ(problem_of(R"({"messages":[]})"), "\"model\" (a string) is required");
    EXPECT_EQ(problem_of(R"({"model":7})"), "\"model\" (a string) is required");
    EXPECT_EQ(problem_of(R"({"model":{"name":"a"}})"), "\"model\" (a string) is required");
    EXPECT_EQ(problem_of(R"({"model":"a","model":null})"), "\"model\" (a string) is required");
    EXPECT_EQ(problem_of(R"({"o":{"model":"nested only"}})"), "\"model\" (a string) is required");
    EXPECT_EQ(problem_of(R"({"model":"a","stream":"yes"})"), "\"stream\" must be a boolean");
    EXPECT_EQ(problem_of(R"({"model":"a","stream":[true]})"), "\"stream\" must be a boolean");
    // Checked all through, not only the top level the gateway reads.
    EXPECT_EQ(problem_of(R"({"model":"a","x":[1,{"y":01}]})"), "request body is not valid JSON");
    EXPECT_EQ(problem_of(R"({"model":"a","x":"\ud800"})"), "request body is not valid JSON");
    EXPECT_EQ(problem_of("{\"model\":\"a\",\"x\":\"\xff\"}"), "request body is not valid JSON");
    EXPECT_EQ(problem_of(R"({"model":"a","x":[1,2)"), "request body is not valid JSON");
    EXPECT_EQ(problem_of(R"({"model":"a"}{})"), "request body is not valid JSON");
    EXPECT_EQ(problem_of("\xef\xbb\xbf{\"model\":\"a\"}"), "request body is not valid JSON");  // no BOM (RFC 8259)
    EXPECT_EQ(problem_of(R"({"model":"\ud800"})"), "request body is not valid JSON");
    EXPECT_EQ(problem_of(R"({"model":"a","stream":tru})"), "request body is not valid JSON");
    EXPECT_EQ(problem_of(R"({"model":"a","x":tru})"), "request body is not valid JSON");
    EXPECT_EQ(problem_of(R"({"model":"a","x":nul})"), "request body is not valid JSON");
    EXPECT_EQ(problem_of(R"({"model":"a","x":1.})"), "request body is not valid JSON");
    EXPECT_EQ(problem_of("{\"model\":\"a\",\"x\":\"tab\there\"}"), "request body is not valid JSON");
}
