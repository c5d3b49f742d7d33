// JSON from and to request bytes: bounded nesting in, no exception out.
#include "app/json_text.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

using agente::json_text;
using agente::parse_json;

namespace {

std::string nested(int levels) {   // an object holding levels - 1 arrays: `levels` in all
    return R"({"x":)" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
}

}  // namespace

TEST(JsonText, NestingIsBoundedAtTheGatewaysDepth) {
    EXPECT_FALSE(parse_json(nested(1000)).is_discarded());
    EXPECT_TRUE(parse_json(nested(1001)).is_discarded());
    // Refused without building the tree, which anything copying it would have recursed through.
    EXPECT_TRUE(parse_json(nested(1'000'000)).is_discarded());
    std::string objects;
    for (int i = 0; i < 100'000; ++i) objects += R"({"a":)";
    EXPECT_TRUE(parse_json(objects + "1" + std::string(100'000, '}')).is_discarded());
}

TEST(JsonText, ScalarsDoNotCountAsLevels) {
    std::string with_scalar = R"({"x":)" + std::string(998, '[') + "[1]" + std::string(998, ']') + "}";
    EXPECT_FALSE(parse_json(with_scalar).is_discarded());   // 1000 containers, the gateway's bound too
}

TEST(JsonText, ManySiblingsParseInLinearTime) {
    // With a parse callback, nlohmann rescans the parent as each object closes: a million siblings
    // took minutes, an event loop stalled past the heartbeat. Linear, this is well under a second.
    std::string siblings = "[";
    for (int i = 0; i < 1'000'000; ++i) siblings += "{},";
    siblings += "{}]";
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(parse_json(siblings).size(), 1'000'001u);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

TEST(JsonText, InvalidJsonIsDiscardedAndValidJsonKept) {
    EXPECT_TRUE(parse_json("").is_discarded());
    EXPECT_TRUE(parse_json(R"({"a":1,})").is_discarded());
    EXPECT_TRUE(parse_json("{\"a\":\"\xff\"}").is_discarded());
    EXPECT_EQ(parse_json(R"({"a":[1,{"b":null}]})"), nlohmann::json::parse(R"({"a":[1,{"b":null}]})"));
}

TEST(JsonText, InvalidUtf8FromRequestBytesIsReplacedNotThrown) {
    nlohmann::json j = {{"message", std::string("no agent \"\xff\x80 ok\"")}};
    EXPECT_EQ(json_text(j), "{\"message\":\"no agent \\\"\xef\xbf\xbd\xef\xbf\xbd ok\\\"\"}");
    EXPECT_EQ(json_text({{"a", 1}}), R"({"a":1})");
}
