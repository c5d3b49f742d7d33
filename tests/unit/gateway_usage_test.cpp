// The usage of a stream the gateway asked for on the client's behalf: read for the key's tokens,
// and kept from a client that did not ask (OpenAI's usage chunk, its "usage":null members).
#include "app/gateway/usage.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace agente::gateway;

TEST(StreamUsage, TheLastChunkIsReadAndKnownForWhatItIs) {
    std::string last = R"({"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}})";
    auto u = usage_of(last);
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(u->in, 4u);
    EXPECT_EQ(u->out, 6u);
    EXPECT_TRUE(is_usage_chunk(last));
    EXPECT_TRUE(is_usage_chunk(R"({"usage" : {"prompt_tokens":1}, "choices" : [ ]})"));
}

TEST(StreamUsage, ContentChunksAreNotUsageChunks) {
    std::string with_null = R"({"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null})";
    EXPECT_FALSE(usage_of(with_null).has_value());
    EXPECT_FALSE(is_usage_chunk(with_null));
    // Some providers put the usage on the last content chunk: it is read, and passed on (it has text).
    std::string both = R"({"choices":[{"index":0,"delta":{"content":"!"}}],"usage":{"prompt_tokens":2,"completion_tokens":1}})";
    EXPECT_EQ(usage_of(both)->out, 1u);
    EXPECT_FALSE(is_usage_chunk(both));
    EXPECT_FALSE(is_usage_chunk(R"({"choices":[],"usage":null})"));
    EXPECT_FALSE(is_usage_chunk(R"({"choices":[{"delta":{"content":"\"usage\":{}"}}]})"));
    EXPECT_FALSE(is_usage_chunk("[DONE]"));
}

TEST(StreamUsage, OnlyTheQuotedWordIsAMention) {
    EXPECT_TRUE(mentions_usage(R"({"choices":[],"usage":null})"));
    EXPECT_TRUE(mentions_usage(R"("usage")"));
    EXPECT_FALSE(mentions_usage(R"({"content":"usage, nousage\"","usages":1})"));
    EXPECT_FALSE(mentions_usage(R"(usage")"));
    EXPECT_FALSE(mentions_usage(""));
    EXPECT_TRUE(is_usage_chunk(R"({"x":"nousage\"","choices":[],"usage":{"prompt_tokens":1}})"));
}

TEST(StreamUsage, TheNullUsageOpenAiAddsToEveryChunkIsTakenOut) {
    std::string out;
    append_without_null_usage(out, "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n");
    EXPECT_EQ(out, "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n");
    append_without_null_usage(out, "data: [DONE]\n\n");
    EXPECT_EQ(out.substr(out.size() - 14), "data: [DONE]\n\n");
    std::string quoted;   // inside a string the quotes are escaped: nothing to take out
    append_without_null_usage(quoted, R"(data: {"choices":[{"delta":{"content":"a,\"usage\":null"}}]})");
    EXPECT_EQ(quoted, R"(data: {"choices":[{"delta":{"content":"a,\"usage\":null"}}]})");
}
