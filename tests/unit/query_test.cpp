// A request's query as the app's routes read it (src/app/common/query.hpp).
#include "app/common/query.hpp"

#include <gtest/gtest.h>

#include <string>

namespace agente::app {
namespace {

std::vector<std::pair<std::string, std::string>> pairs(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> out;
    auto params = parse_query(query);
    if (!params) return {{"<malformed>", ""}};
    for (auto& p : *params) out.emplace_back(p.name, p.value);
    return out;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

// What broke GET /v1/files?limit=5&order=asc on main: a request's query is a view into Beast's copy
// of the target, with no NUL after it, and Boost 1.81's parse_query measured it with strlen.
TEST(Query, AViewEndsWhereItEndsNotAtTheNextNul) {
    const std::string target = "/v1/files?limit=5&order=asc\nV garbage after the target";
    std::string_view query = std::string_view(target).substr(10, 17);
    ASSERT_EQ(query, "limit=5&order=asc");
    EXPECT_EQ(pairs(query), (Pairs{{"limit", "5"}, {"order", "asc"}}));
    // An '&' past the end is not another parameter either.
    const std::string amp = "a=1&b=2";
    EXPECT_EQ(pairs(std::string_view(amp).substr(0, 3)), (Pairs{{"a", "1"}}));
}

TEST(Query, NamesAndValuesArePercentDecodedPlusIsASpace) {
    EXPECT_EQ(pairs("q=a%20b+c&k%C3%A9y=%2B"), (Pairs{{"q", "a b c"}, {"kéy", "+"}}));
}

TEST(Query, ANameWithoutValueAndEmptyPartsAreKept) {
    EXPECT_EQ(pairs("flag&x=&=y"), (Pairs{{"flag", ""}, {"x", ""}, {"", "y"}}));
    EXPECT_EQ(pairs(""), Pairs{});
}

TEST(Query, ABadEscapeIsMalformed) {
    EXPECT_FALSE(parse_query("a=%zz"));
    EXPECT_FALSE(parse_query("a=%2"));
}

}  // namespace
}  // namespace agente::app
