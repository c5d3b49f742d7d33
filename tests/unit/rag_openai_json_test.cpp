// OpenAI's objects as unchanged clients read them, and the checks on search and chunking requests.
#include "app/rag/openai_json.hpp"

#include <gtest/gtest.h>

namespace agente::rag {
namespace {

using nlohmann::json;

std::string problem_of(const json& body) {
    std::string problem;
    EXPECT_FALSE(parse_search_request(body, problem));
    return problem;
}

TEST(RagOpenAiJson, AVectorStoreFileWithItsLastError) {
    AttachmentRecord a;
    a.file_id = "file-1";
    a.store_id = "vs_1";
    a.status = "failed";
    a.error_code = "invalid_file";
    a.error_message = "not a readable PDF (damaged or not a PDF)";
    a.attributes = R"({"topic":"bees"})";
    json j = attachment_json(a);
    EXPECT_EQ(j["object"], "vector_store.file");
    EXPECT_EQ(j["id"], "file-1");
    EXPECT_EQ(j["vector_store_id"], "vs_1");
    EXPECT_EQ(j["last_error"], json({{"code", "invalid_file"}, {"message", "not a readable PDF (damaged or not a PDF)"}}));
    EXPECT_EQ(j["chunking_strategy"]["static"]["max_chunk_size_tokens"], 800);
    EXPECT_EQ(j["attributes"]["topic"], "bees");
    a.status = "completed";
    EXPECT_TRUE(attachment_json(a)["last_error"].is_null());
}

TEST(RagOpenAiJson, AStoreIsInProgressWhileAnyFileIs) {
    StoreRecord s;
    s.id = "vs_1";
    s.metadata = R"({"team":"a"})";
    s.counts = {1, 2, 0, 0, 3};
    json j = store_json(s);
    EXPECT_EQ(j["object"], "vector_store");
    EXPECT_EQ(j["status"], "in_progress");
    EXPECT_EQ(j["file_counts"]["total"], 3);
    EXPECT_EQ(j["metadata"]["team"], "a");
    s.counts = {0, 3, 0, 0, 3};
    EXPECT_EQ(store_json(s)["status"], "completed");
    EXPECT_EQ(batch_json("vsfb_1", "vs_1", 5, {0, 0, 0, 2, 2})["status"], "cancelled");
}

TEST(RagOpenAiJson, ASearchPageInOpenAisShapeWithTheChunksPlace) {
    SearchPage p;
    p.query = "bees";
    SearchHit h;
    h.file_id = "file-1";
    h.filename = "bees.md";
    h.score = 0.9;
    h.attributes = json{{"topic", "bees"}};
    h.text = "Honey bees.";
    h.heading = "Bees";
    h.chunk = 2;
    p.hits.push_back(h);
    json j = search_page_json(p);
    EXPECT_EQ(j["object"], "vector_store.search_results.page");
    EXPECT_EQ(j["search_query"], json::array({"bees"}));
    EXPECT_EQ(j["data"][0]["content"], json::array({{{"type", "text"}, {"text", "Honey bees."}}}));
    EXPECT_EQ(j["data"][0]["chunk"]["section"], "Bees");
    EXPECT_FALSE(j["has_more"]);
    json l = list_json(json::array({{{"id", "a"}}, {{"id", "b"}}}), true);
    EXPECT_EQ(l["first_id"], "a");
    EXPECT_EQ(l["last_id"], "b");
}

TEST(RagOpenAiJson, SearchRequests) {
    std::string problem;
    auto r = parse_search_request(json::parse(R"({"query":"bees","max_num_results":5,
        "filters":{"type":"eq","key":"topic","value":"bees"},
        "ranking_options":{"ranker":"auto","score_threshold":0.2,"hybrid_search":{"embedding_weight":2,"text_weight":1}}})"),
                                  problem);
    ASSERT_TRUE(r) << problem;
    EXPECT_EQ(r->max_num_results, 5);
    EXPECT_TRUE(r->filter);
    EXPECT_EQ(r->ranker, Ranker::hybrid);
    EXPECT_DOUBLE_EQ(r->score_threshold, 0.2);
    EXPECT_EQ(*r->embedding_weight, 2);
    EXPECT_EQ(parse_search_request(json::parse(R"({"query":["a","b"]})"), problem)->query, "a b");
    EXPECT_EQ(parse_search_request(json::parse(R"({"query":"x","ranking_options":{"ranker":"bm25"}})"), problem)->ranker,
              Ranker::text);
    EXPECT_EQ(problem_of(json::parse(R"({})")), "query: expected a string or a list of strings");
    EXPECT_EQ(problem_of(json::parse(R"({"query":"  "})")), "query: empty");
    EXPECT_EQ(problem_of(json{{"query", std::string(5000, 'a')}}), "query: longer than 4096 characters");
    EXPECT_EQ(problem_of(json::parse(R"({"query":"a","max_num_results":51})")),
              "max_num_results: expected an integer between 1 and 50");
    EXPECT_EQ(problem_of(json::parse(R"({"query":"a","filters":{"type":"zz"}})")), "filters.type: unknown filter type \"zz\"");
    EXPECT_EQ(problem_of(json::parse(R"({"query":"a","ranking_options":{"ranker":"magic"}})")),
              "ranking_options.ranker: expected auto, default-2024-11-15, none, hybrid, vector or bm25");
    EXPECT_EQ(problem_of(json::parse(R"({"query":"a","ranking_options":{"score_threshold":2}})")),
              "ranking_options.score_threshold: expected a number between 0.0 and 1.0");
}

TEST(RagOpenAiJson, ChunkingStrategies) {
    std::string problem;
    EXPECT_EQ(parse_chunking(nullptr, problem)->max_tokens, 800);
    json a = {{"type", "auto"}};
    EXPECT_EQ(parse_chunking(&a, problem)->overlap_tokens, 400);
    json s = json::parse(R"({"type":"static","static":{"max_chunk_size_tokens":300,"chunk_overlap_tokens":50}})");
    EXPECT_EQ(parse_chunking(&s, problem)->max_tokens, 300);
    json big = json::parse(R"({"type":"static","static":{"max_chunk_size_tokens":4294968096,"chunk_overlap_tokens":0}})");
    EXPECT_FALSE(parse_chunking(&big, problem)) << "2^32 + 800 is not 800";
    EXPECT_EQ(problem, "chunking_strategy.static: max_chunk_size_tokens must be between 100 and 4096, got 4097");
    json bad = {{"type", "semantic"}};
    EXPECT_FALSE(parse_chunking(&bad, problem));
    EXPECT_EQ(problem, "chunking_strategy.type: expected auto or static");
}

}  // namespace
}  // namespace agente::rag
