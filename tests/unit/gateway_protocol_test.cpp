// SSE framing, error objects, client-key checks and base URLs.
#include "app/common/auth.hpp"
#include "app/gateway/errors.hpp"
#include "app/gateway/settings.hpp"
#include "app/gateway/sse.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

namespace agente::gateway {
namespace {
using agente::bearer_token;
using app::KeySet;

TEST(SseSplitter, EmitsEachEventWhenItsBlankLineArrives) {
    SseSplitter s;
    EXPECT_TRUE(s.feed("data: {\"a\"").empty());
    auto ev = s.feed(":1}\n\ndata: 2\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], "data: {\"a\":1}\n\n");
    ev = s.feed("\ndata: [DONE]\n\n");
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0], "data: 2\n\n");
    std::string joined;
    EXPECT_EQ(event_data(ev[1], joined), "[DONE]");
    EXPECT_TRUE(s.pending().empty());
}

TEST(SseSplitter, NormalisesCrLfEvenSplitAcrossPieces) {
    SseSplitter s;
    EXPECT_TRUE(s.feed("data: x\r").empty());
    auto ev = s.feed("\n\r");   // CR LF, then a lone CR: already a blank line
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], "data: x\n\n");
    EXPECT_TRUE(s.feed("\n").empty());   // the LF of that last CR LF adds no second blank line
    EXPECT_TRUE(s.pending().empty());
}

// The splitter takes runs between CRs at once; this one takes a byte at a time, as it once did.
std::string normalised_a_byte_at_a_time(const std::vector<std::string>& pieces) {
    std::string out;
    bool after_cr = false;
    for (const auto& piece : pieces)
        for (char c : piece) {
            if (c == '\n' && after_cr) {
                after_cr = false;
                continue;
            }
            after_cr = c == '\r';
            out.push_back(after_cr ? '\n' : c);
        }
    return out;
}

TEST(SseSplitter, AnySplitOfAnyMixOfLineEndsGivesWhatAByteAtATimeGives) {
    std::mt19937 random(7);
    const std::string alphabet = "\r\n\r\nda:x";
    for (int round = 0; round < 2000; ++round) {
        std::string text;
        for (int i = 0, n = int(random() % 40); i < n; ++i) text += alphabet[random() % alphabet.size()];
        std::vector<std::string> pieces;
        for (std::size_t at = 0; at < text.size();) {
            std::size_t n = random() % 5;  // empty pieces too
            pieces.push_back(text.substr(at, n));
            at += n;
        }
        SseSplitter s;
        std::string got;
        for (const auto& piece : pieces)
            for (const auto& event : s.feed(piece)) got += event;
        // Events drop blank lines between them; compare with those dropped the same way.
        std::string want, rest = normalised_a_byte_at_a_time(pieces);
        std::size_t start = 0, end;
        while ((end = rest.find("\n\n", start)) != std::string::npos) {
            std::string_view ev(rest.data() + start, end + 2 - start);
            if (ev.find_first_not_of('\n') != std::string_view::npos) want += ev;
            start = end + 2;
        }
        ASSERT_EQ(got, want) << testing::PrintToString(text);
        ASSERT_EQ(s.pending(), rest.substr(start)) << testing::PrintToString(text);
    }
}

TEST(SseSplitter, KeepsCommentsAndMultiLineData) {
    SseSplitter s;
    auto ev = s.feed(": ping\n\nevent: x\ndata: a\ndata: b\n\n");
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0], ": ping\n\n");
    std::string joined;
    EXPECT_EQ(event_data(ev[1], joined), "a\nb");
    EXPECT_NE(event_data(ev[1], joined), "[DONE]");
}

TEST(SseSplitter, EventsStayValidUntilTheNextPieceAndNothingHandedOutIsKept) {
    SseSplitter s;
    std::string first(200, 'x');   // longer than any short-string buffer
    auto ev = s.feed("data: " + first + "\n\ndata: tail");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], "data: " + first + "\n\n");
    EXPECT_EQ(s.pending(), "data: tail");
    ev = s.feed("\n\n");
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0], "data: tail\n\n");
    EXPECT_TRUE(s.pending().empty());
}

TEST(EventData, OneDataLineIsAViewIntoTheEventSeveralAreJoined) {
    std::string joined;
    std::string_view one = "event: x\ndata: {\"a\":1}\n\n";
    std::string_view data = event_data(one, joined);
    EXPECT_EQ(data, "{\"a\":1}");
    EXPECT_TRUE(data.data() >= one.data() && data.data() < one.data() + one.size());
    EXPECT_EQ(event_data("data: a\ndata:b\n: note\ndata:  c\n\n", joined), "a\nb\n c");
    EXPECT_EQ(event_data(": ping\n\n", joined), "");
    EXPECT_EQ(event_data("data: [DONE]\n\n", joined), "[DONE]");   // a joined one before changes nothing
}

TEST(Errors, OpenAiShapeWithTypeAndCodePerStatus) {
    struct Case { int status; const char* type; const char* code; };
    for (auto c : {Case{400, "invalid_request_error", "invalid_request"}, Case{401, "authentication_error", "invalid_api_key"},
                   Case{404, "not_found_error", "model_not_found"}, Case{429, "rate_limit_error", "rate_limit_exceeded"},
                   Case{502, "api_error", "upstream_error"}, Case{503, "service_unavailable", "circuit_open"},
                   Case{504, "timeout", "upstream_timeout"}}) {
        Response r = error_response(c.status, "msg");
        EXPECT_EQ(r.status, c.status);
        auto j = nlohmann::json::parse(r.body);
        EXPECT_EQ(j["error"]["message"], "msg");
        EXPECT_EQ(j["error"]["type"], c.type);
        EXPECT_EQ(j["error"]["code"], c.code);
        EXPECT_TRUE(j["error"].contains("param"));
    }
    auto ev = error_event("lost", "upstream_error");
    EXPECT_EQ(ev.rfind("data: {", 0), 0u);
    EXPECT_EQ(ev.substr(ev.size() - 2), "\n\n");
}

TEST(KeySet, MatchesOnlyWholeKeys) {
    KeySet keys({"sk-one", "sk-two-longer"});
    EXPECT_TRUE(keys.contains("sk-one"));
    EXPECT_TRUE(keys.contains("sk-two-longer"));
    EXPECT_FALSE(keys.contains("sk-on"));
    EXPECT_FALSE(keys.contains("sk-one "));
    EXPECT_FALSE(keys.contains(""));
    EXPECT_TRUE(KeySet({}).empty());
    EXPECT_FALSE(KeySet({}).contains(""));
}

TEST(KeySet, BearerToken) {
    EXPECT_EQ(bearer_token("Bearer abc"), "abc");
    EXPECT_EQ(bearer_token("bearer  abc "), "abc");
    EXPECT_EQ(bearer_token("Basic abc"), "");
    EXPECT_EQ(bearer_token("Bearer "), "");
    EXPECT_EQ(bearer_token(""), "");
}

TEST(BaseUrl, ParsesSchemeHostPortAndPath) {
    auto e = parse_base_url("https://generativelanguage.googleapis.com/v1beta/openai/");
    EXPECT_TRUE(e.tls);
    EXPECT_EQ(e.host, "generativelanguage.googleapis.com");
    EXPECT_EQ(e.port, "443");
    EXPECT_EQ(e.base_path, "/v1beta/openai");
    e = parse_base_url("http://127.0.0.1:8080");
    EXPECT_FALSE(e.tls);
    EXPECT_EQ(e.port, "8080");
    EXPECT_EQ(e.base_path, "");
    e = parse_base_url("http://[::1]:9/v1");
    EXPECT_EQ(e.host, "::1");
    EXPECT_EQ(e.port, "9");
    EXPECT_THROW(parse_base_url("ftp://x"), std::invalid_argument);
    EXPECT_THROW(parse_base_url("http://:80"), std::invalid_argument);
    EXPECT_THROW(parse_base_url("http://h:99999"), std::invalid_argument);
}

}  // namespace
}  // namespace agente::gateway
