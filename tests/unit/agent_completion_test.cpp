// What the agent takes from an upstream stream: the delta text of each chunk, nothing from the rest.
#include "app/gateway/completion.hpp"

#include <gtest/gtest.h>

namespace agente::gateway {
namespace {

TEST(AgentCompletion, DeltaContentOfAChunk) {
    EXPECT_EQ(delta_content(R"({"choices":[{"index":0,"delta":{"content":"tok0 "}}]})"), "tok0 ");
    EXPECT_EQ(delta_content(R"({"choices":[{"index":0,"delta":{"role":"assistant"}}]})"), "");
    EXPECT_EQ(delta_content(R"({"choices":[{"index":0,"delta":{"content":null},"finish_reason":"stop"}]})"), "");
    EXPECT_EQ(delta_content(R"({"choices":[]})"), "");
    EXPECT_EQ(delta_content("[DONE]"), "");
    EXPECT_EQ(delta_content("not json"), "");
}

}  // namespace
}  // namespace agente::gateway
