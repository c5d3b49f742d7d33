// Answers grounded in vector stores, the pure part (src/app/rag/grounded_prompt.hpp): which question
// is searched, which sources reach the prompt and in what order, and what an answer cites.
#include "app/rag/grounded_prompt.hpp"

#include <gtest/gtest.h>

namespace agente::rag {
namespace {

using nlohmann::json;

json hit(const std::string& file, double score, const std::string& text, const std::string& section = "", int page = 0) {
    return {{"file_id", "file-" + file}, {"filename", file}, {"score", score},
            {"content", json::array({{{"type", "text"}, {"text", text}}})},
            {"chunk", {{"section", section}, {"page", page}, {"index", 0}}}};
}

json page(std::vector<json> hits) { return {{"object", "vector_store.search_results.page"}, {"data", hits}}; }

TEST(RagGrounded, TheQueryIsTheLastUserMessageThenTheTurnsBeforeItNewestFirst) {
    json messages = json::parse(R"([{"role":"system","content":"be brief"},{"role":"user","content":"first"},
        {"role":"assistant","content":"a"},{"role":"user","content":[{"type":"text","text":"how do"},
        {"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"bees fly?"}]},{"role":"assistant","content":"b"}])");
    // The last user message (its text parts), then the assistant's "a" and the user's "first"; the
    // system prompt and the reply after the question are no part of it.
    EXPECT_EQ(retrieval_query(messages, 4, 4096), "how do\nbees fly?\na\nfirst");
    EXPECT_EQ(retrieval_query(messages, 1, 4096), "how do\nbees fly?\na");
    EXPECT_EQ(retrieval_query(messages, 0, 4096), "how do\nbees fly?");
    EXPECT_EQ(retrieval_query(json::parse(R"([{"role":"system","content":"x"}])"), 4, 4096), "");
    EXPECT_EQ(retrieval_query(json::parse(R"([{"role":"user","content":""},{"role":"assistant","content":"a"}])"), 4, 4096), "");
    EXPECT_EQ(retrieval_query(json("not a list"), 4, 4096), "");
}

TEST(RagGrounded, AQueryPastItsBoundLosesTheOldestContextNeverTheQuestionsStart) {
    json messages = json::parse(R"([{"role":"user","content":"older turn"},{"role":"user","content":"ação?"}])");
    EXPECT_EQ(retrieval_query(messages, 4, 7), "ação?");      // the older turn cut away
    EXPECT_EQ(retrieval_query(messages, 4, 2), "a");          // never half of "ç"
    EXPECT_EQ(retrieval_query(messages, 4, 3), "aç");
    EXPECT_EQ(retrieval_query(messages, 4, 4), "aç");         // nor of "ã"
}

TEST(RagGrounded, SourcesOfAllStoresBestFirstNumberedFromOneUpToMax) {
    auto sources = sources_from({"a", "b"},
                                {page({hit("x.md", 0.5, "x"), hit("y.pdf", 0.3, "y", "Intro > Setup", 4)}),
                                 page({hit("z.md", 0.9, "z"), hit("empty.md", 0.95, "")})},
                                2);
    ASSERT_EQ(sources.size(), 2u);   // a chunk without text is no source
    EXPECT_EQ((std::vector<std::string>{sources[0].filename, sources[1].filename}), (std::vector<std::string>{"z.md", "x.md"}));
    EXPECT_EQ(sources[0].number, 1);
    EXPECT_EQ(sources[0].store, "b");
    EXPECT_EQ(sources[1].number, 2);
    auto all = sources_from({"a"}, {page({hit("y.pdf", 0.3, "y", "Intro > Setup", 4)})}, 5);
    EXPECT_EQ(all[0].section, "Intro > Setup");
    EXPECT_EQ(all[0].page, 4);
}

TEST(RagGrounded, TheSourcesGoFirstAsASystemMessageTheClientsMessagesFollowUnchanged) {
    std::vector<Source> sources{{1, "kb", "file-1", "guide.pdf", "Install", 3, "Run make.", 0.9}};
    json body = {{"messages", json::array({{{"role", "user"}, {"content", "how?"}}})}, {"temperature", 0.2}};
    json out = with_sources(body, sources);
    ASSERT_EQ(out["messages"].size(), 2u);
    EXPECT_EQ(out["messages"][0]["role"], "system");
    std::string prompt = out["messages"][0]["content"];
    EXPECT_NE(prompt.find("[1] guide.pdf, section \"Install\", page 3:\nRun make."), std::string::npos) << prompt;
    EXPECT_NE(prompt.find("cite nothing"), std::string::npos);
    EXPECT_EQ(out["messages"][1], body["messages"][0]);
    EXPECT_EQ(out["temperature"], 0.2);
}

TEST(RagGrounded, CitationsAreTheSourcesTheAnswerNamesAndNoOthers) {
    std::vector<Source> sources{{1, "kb", "file-1", "a.md", "A", 0, "alpha", 0.9},
                                {2, "kb", "file-2", "b.pdf", "B", 7, "beta", 0.8},
                                {3, "kb", "file-3", "c.md", "", 0, "gamma", 0.7}};
    auto indexes = [&](std::string_view answer) {
        std::vector<int> out;
        for (auto& c : citations(answer, sources)) out.push_back(c["index"]);
        return out;
    };
    EXPECT_EQ(indexes("Alpha [1]. Gamma [3][1]."), (std::vector<int>{1, 3}));
    EXPECT_EQ(indexes("Both [1, 2] and [2,3]."), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(indexes("None [9], [0], [x], [1 and [ 2]. A list [a]."), std::vector<int>{});
    EXPECT_EQ(indexes("The documents do not cover it."), std::vector<int>{});
    json c = citations("see [2]", sources)[0];
    EXPECT_EQ(c["filename"], "b.pdf");
    EXPECT_EQ(c["file_id"], "file-2");
    EXPECT_EQ(c["section"], "B");
    EXPECT_EQ(c["page"], 7);
    EXPECT_EQ(c["quote"], "beta");
    EXPECT_EQ(c["vector_store"], "kb");
    EXPECT_TRUE(citations("see [1]", sources)[0]["page"].is_null());   // not a PDF
}

}  // namespace
}  // namespace agente::rag
