// OpenAI's attribute filters as a specification, and reciprocal rank fusion.
#include "app/rag/filters.hpp"
#include "app/rag/rank.hpp"

#include <gtest/gtest.h>

namespace agente::rag {
namespace {

using nlohmann::json;

bool match(const char* filter, const char* attributes) {
    std::string problem;
    auto f = parse_filter(json::parse(filter), problem);
    EXPECT_TRUE(f) << problem;
    return f && matches(*f, json::parse(attributes));
}

std::string problem_of(const char* filter) {
    std::string problem;
    EXPECT_FALSE(parse_filter(json::parse(filter), problem));
    return problem;
}

TEST(RagFilters, Comparisons) {
    const char* a = R"({"topic":"bees","year":2021,"draft":false,"score":4.5})";
    EXPECT_TRUE(match(R"({"type":"eq","key":"topic","value":"bees"})", a));
    EXPECT_FALSE(match(R"({"type":"eq","key":"topic","value":"Bees"})", a));
    EXPECT_TRUE(match(R"({"type":"ne","key":"topic","value":"tides"})", a));
    EXPECT_TRUE(match(R"({"type":"eq","key":"year","value":2021.0})", a));    // numbers as numbers
    EXPECT_TRUE(match(R"({"type":"gt","key":"year","value":2020})", a));
    EXPECT_TRUE(match(R"({"type":"gte","key":"year","value":2021})", a));
    EXPECT_FALSE(match(R"({"type":"lt","key":"year","value":2021})", a));
    EXPECT_TRUE(match(R"({"type":"lte","key":"score","value":4.5})", a));
    EXPECT_TRUE(match(R"({"type":"eq","key":"draft","value":false})", a));
    EXPECT_TRUE(match(R"({"type":"in","key":"topic","value":["tides","bees"]})", a));
    EXPECT_TRUE(match(R"({"type":"nin","key":"topic","value":["tides","rust"]})", a));
    EXPECT_FALSE(match(R"({"type":"nin","key":"year","value":[2021]})", a));
    EXPECT_TRUE(match(R"({"type":"gt","key":"topic","value":"apples"})", a));   // strings as byte strings
}

TEST(RagFilters, AMissingKeyOrAnotherTypeMatchesNoComparisonButNe) {
    const char* a = R"({"topic":"bees","year":2021})";
    EXPECT_FALSE(match(R"({"type":"eq","key":"lang","value":"en"})", a));
    EXPECT_FALSE(match(R"({"type":"ne","key":"lang","value":"en"})", a));
    EXPECT_FALSE(match(R"({"type":"nin","key":"lang","value":["en"]})", a));
    EXPECT_FALSE(match(R"({"type":"gt","key":"year","value":"2020"})", a));     // a string against a number
    EXPECT_TRUE(match(R"({"type":"ne","key":"year","value":"2021"})", a));      // not equal: another type
    EXPECT_FALSE(match(R"({"type":"lt","key":"topic","value":true})", a));
}

TEST(RagFilters, Compounds) {
    const char* a = R"({"topic":"bees","year":2021})";
    EXPECT_TRUE(match(R"({"type":"and","filters":[{"type":"eq","key":"topic","value":"bees"},
                                                   {"type":"gte","key":"year","value":2020}]})", a));
    EXPECT_FALSE(match(R"({"type":"and","filters":[{"type":"eq","key":"topic","value":"bees"},
                                                    {"type":"gt","key":"year","value":2021}]})", a));
    EXPECT_TRUE(match(R"({"type":"or","filters":[{"type":"eq","key":"topic","value":"rust"},
                                                  {"type":"and","filters":[{"type":"eq","key":"year","value":2021}]}]})", a));
}

TEST(RagFilters, BadFiltersAreRefusedNamingThePlace) {
    EXPECT_EQ(problem_of(R"([])"), "filters: expected an object with a \"type\"");
    EXPECT_EQ(problem_of(R"({"type":"like","key":"a","value":1})"), "filters.type: unknown filter type \"like\"");
    EXPECT_EQ(problem_of(R"({"type":"eq","value":1})"), "filters.key: expected the attribute's name");
    EXPECT_EQ(problem_of(R"({"type":"eq","key":"a"})"), "filters.value: missing");
    EXPECT_EQ(problem_of(R"({"type":"eq","key":"a","value":{"x":1}})"), "filters.value: expected a string, a number or a boolean");
    EXPECT_EQ(problem_of(R"({"type":"in","key":"a","value":"x"})"), "filters.value: expected a list for in");
    EXPECT_EQ(problem_of(R"({"type":"and","filters":[]})"), "filters.filters: expected a non-empty list of filters");
    EXPECT_EQ(problem_of(R"({"type":"or","filters":[{"type":"eq","key":"a","value":1},{"type":"x"}]})"),
              "filters.filters[1].type: unknown filter type \"x\"");
    json deep = {{"type", "eq"}, {"key", "a"}, {"value", 1}};
    for (int i = 0; i < 20; ++i) deep = {{"type", "and"}, {"filters", json::array({deep})}};
    std::string problem;
    EXPECT_FALSE(parse_filter(deep, problem));
    EXPECT_NE(problem.find("filters nest deeper than 16"), std::string::npos) << problem;
}

TEST(RagFilters, AttributesWithinOpenAIsLimits) {
    EXPECT_FALSE(attributes_problem(json::parse(R"({"a":"x","b":1,"c":true})")));
    EXPECT_EQ(*attributes_problem(json::parse("[]")), "attributes: expected an object");
    EXPECT_EQ(*attributes_problem(json::parse(R"({"a":[1]})")), "attributes.a: expected a string, a number or a boolean");
    json many = json::object();
    for (int i = 0; i < 17; ++i) many["k" + std::to_string(i)] = i;
    EXPECT_EQ(*attributes_problem(many), "attributes: at most 16 keys, got 17");
    EXPECT_EQ(*attributes_problem(json{{"a", std::string(513, 'x')}}), "attributes.a: strings are at most 512 characters");
}

TEST(RagFusion, AChunkBothRankingsPlaceWellBeatsOneOnlyOneLoves) {
    // 7 is first by vectors only; 3 is second in both.
    auto f = fuse_rrf({7, 3, 5}, {9, 3, 8}, 60, 1.0, 1.0);
    EXPECT_EQ(f[0].id, 3);
    EXPECT_EQ(f[0].vector_rank, 2);
    EXPECT_EQ(f[0].text_rank, 2);
    EXPECT_EQ(f[1].id, 7);                           // tie with 9 broken by the vector rank
    EXPECT_EQ(f[2].id, 9);
    EXPECT_EQ(f.size(), 5u);
}

TEST(RagFusion, ScoresAreNormalizedToTheBestPossible) {
    auto f = fuse_rrf({1}, {1}, 60, 1.0, 1.0);
    EXPECT_DOUBLE_EQ(f[0].score, 1.0);
    auto only_vectors = fuse_rrf({1}, {}, 60, 1.0, 1.0);
    EXPECT_DOUBLE_EQ(only_vectors[0].score, 0.5);    // found by one of two rankings asked for
    auto vector_ranker = fuse_rrf({1}, {}, 60, 1.0, 0.0);
    EXPECT_DOUBLE_EQ(vector_ranker[0].score, 1.0);
}

TEST(RagFusion, WeightsAndKShiftTheBalance) {
    // Text first for 9, vectors first for 7: the heavier ranking wins.
    EXPECT_EQ(fuse_rrf({7, 9}, {9, 7}, 60, 2.0, 1.0)[0].id, 7);
    EXPECT_EQ(fuse_rrf({7, 9}, {9, 7}, 60, 1.0, 2.0)[0].id, 9);
    // A small k makes the top of each ranking count more than agreement further down.
    EXPECT_EQ(fuse_rrf({1, 2, 3}, {4, 5, 2}, 0, 1.0, 1.0)[0].id, 1);
    EXPECT_EQ(fuse_rrf({1, 2, 3}, {4, 5, 2}, 60, 1.0, 1.0)[0].id, 2);
}

}  // namespace
}  // namespace agente::rag
