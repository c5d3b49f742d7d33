// Units of the core that need no process: routes, request and response helpers.
#include "core/router.hpp"
#include "fake_request.hpp"

#include <gtest/gtest.h>

using namespace agente;
using namespace agente::core;

namespace {

Response ok(const Request&) { return Response::json(200, "{}"); }

}  // namespace

TEST(Router, ExactParamHeadAndMethodMismatch) {
    RouteTable t;
    t.add("GET", "/health", SyncHandler(ok));
    t.add("POST", "/agent/stream/{agent_id}", SyncHandler(ok));
    EXPECT_NE(t.find("GET", "/health").route, nullptr);
    EXPECT_NE(t.find("HEAD", "/health").route, nullptr);  // HEAD is served as GET
    auto m = t.find("POST", "/agent/stream/kimi");
    ASSERT_NE(m.route, nullptr);
    EXPECT_EQ(m.param, "kimi");
    EXPECT_EQ(t.find("POST", "/agent/stream/").route, nullptr);       // the segment may not be empty
    EXPECT_EQ(t.find("POST", "/agent/stream/a/b").route, nullptr);    // nor span segments
    auto wrong = t.find("DELETE", "/health");
    EXPECT_EQ(wrong.route, nullptr);
    EXPECT_TRUE(wrong.path_known);                                    // 405, not 404
    EXPECT_FALSE(t.find("GET", "/nope").path_known);
}

TEST(Router, ParamsInAnySegmentComeInOrder) {
    RouteTable t;
    t.add("GET", "/v1/stores/{id}", SyncHandler(ok));
    t.add("GET", "/v1/stores/{id}/files", SyncHandler(ok));
    t.add("DELETE", "/v1/stores/{id}/files/{file_id}", SyncHandler(ok));
    auto one = t.find("GET", "/v1/stores/s1");
    ASSERT_NE(one.route, nullptr);
    EXPECT_EQ(one.route->path, "/v1/stores/{id}");
    EXPECT_EQ(one.param_count, 1u);
    EXPECT_EQ(one.params[0], "s1");
    auto list = t.find("GET", "/v1/stores/s1/files");
    ASSERT_NE(list.route, nullptr);
    EXPECT_EQ(list.route->path, "/v1/stores/{id}/files");
    EXPECT_EQ(list.params[0], "s1");
    auto two = t.find("DELETE", "/v1/stores/s1/files/f2");
    ASSERT_NE(two.route, nullptr);
    EXPECT_EQ(two.param_count, 2u);
    EXPECT_EQ(two.params[0], "s1");
    EXPECT_EQ(two.params[1], "f2");
    EXPECT_EQ(two.param, "f2");                                          // path_param(): the last
    EXPECT_EQ(t.find("DELETE", "/v1/stores//files/f2").route, nullptr);   // no empty segment
    EXPECT_EQ(t.find("DELETE", "/v1/stores/s1/files/f2/x").route, nullptr);
    EXPECT_EQ(t.find("DELETE", "/v1/stores/s1/other/f2").route, nullptr);   // literals must match
    EXPECT_EQ(t.find("GET", "/v1/stores/s1/files/").route, nullptr);
    auto wrong = t.find("GET", "/v1/stores/s1/files/f2");
    EXPECT_EQ(wrong.route, nullptr);
    EXPECT_TRUE(wrong.path_known);                                        // 405, not 404
}

TEST(Router, RejectsABraceInsideASegmentAndTooManyParams) {
    RouteTable t;
    EXPECT_THROW(t.add("GET", "/x/a{id}", SyncHandler(ok)), std::invalid_argument);
    EXPECT_THROW(t.add("GET", "/x/{id}b/y", SyncHandler(ok)), std::invalid_argument);
    EXPECT_THROW(t.add("GET", "/{a}/{b}/{c}/{d}/{e}", SyncHandler(ok)), std::invalid_argument);
    EXPECT_NO_THROW(t.add("GET", "/{a}/{b}/{c}/{d}", SyncHandler(ok)));
}

TEST(RequestHelpers, PathAndQuery) {
    FakeRequest r;
    EXPECT_EQ(r.path(), "/a/b");
    EXPECT_EQ(r.query(), "x=1");
    r.target_ = "/plain";
    EXPECT_EQ(r.query(), "");
}

TEST(ResponseHelpers, ErrorIsJsonWithMessageAndCode) {
    auto r = Response::error(413, "too \"big\"");
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.body, R"({"error":{"code":413,"message":"too \"big\""}})");
}
