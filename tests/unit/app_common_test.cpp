// The app's shared pieces: the rate limit of lines anyone can cause, and the one gatekeeper every
// route asks (client keys, admin token).
#include "app/common/auth.hpp"
#include "app/common/log_limit.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace agente::app {
namespace {

using namespace std::chrono_literals;

TEST(LogLimit, ABurstPerWindowThenTheCountOfWhatWasLeftOut) {
    LogLimit limit(3, 10s);
    LogLimit::Clock::time_point t0{};
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(limit.admit(t0 + 1s * i).log);
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(limit.admit(t0 + 5s).log);
    auto next = limit.admit(t0 + 10s);   // a new window: logged, and told what the last one left out
    EXPECT_TRUE(next.log);
    EXPECT_EQ(next.left_out, 5u);
    EXPECT_EQ(limit.admit(t0 + 11s).left_out, 0u);
}

TEST(LogLimit, AQuietWindowLeavesNothingOut) {
    LogLimit limit(2, 1s);
    LogLimit::Clock::time_point t0{};
    for (int i = 0; i < 10; ++i) {
        auto d = limit.admit(t0 + 2s * i);
        EXPECT_TRUE(d.log);
        EXPECT_EQ(d.left_out, 0u);
    }
}

class FakeRequest final : public Request {
public:
    std::string authorization;
    std::string_view method() const override { return "POST"; }
    std::string_view target() const override { return "/tasks/send"; }
    std::string_view header(std::string_view n) const override {
        return n == "Authorization" ? std::string_view(authorization) : std::string_view();
    }
    std::string_view body() const override { return {}; }
    std::string_view remote_addr() const override { return "192.0.2.7"; }
    std::string_view scheme() const override { return "http"; }
    std::string_view path_param() const override { return {}; }
};

Response shaped(int status, std::string_view message) { return Response::json(status, std::string(message)); }

TEST(Gatekeeper, ClientKeysWhenAnyIsConfigured) {
    Gatekeeper open({}, "");
    FakeRequest r;
    EXPECT_TRUE(open.open());
    EXPECT_FALSE(open.refuse_client(r, shaped));   // no key configured: open, as the seeds' endpoints were

    Gatekeeper keyed({"sk-a", "sk-b"}, "");
    EXPECT_FALSE(keyed.open());
    auto refused = keyed.refuse_client(r, shaped);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 401);
    EXPECT_EQ(refused->body, "missing or invalid API key");   // in the endpoint's own shape
    ASSERT_EQ(refused->headers.size(), 1u);
    EXPECT_EQ(refused->headers[0].name, "WWW-Authenticate");
    r.authorization = "Bearer sk-c";
    EXPECT_TRUE(keyed.refuse_client(r, shaped));
    r.authorization = "Bearer sk-b";
    EXPECT_FALSE(keyed.refuse_client(r, shaped));
    r.authorization = "Bearer ";
    EXPECT_TRUE(keyed.refuse_client(r, shaped));
}

TEST(Gatekeeper, TellsWhichClientKeyItWas) {
    Gatekeeper keyed({"sk-a", "sk-b", "sk-c"}, "");
    FakeRequest r;
    int client = 7;
    r.authorization = "Bearer sk-b";
    EXPECT_FALSE(keyed.refuse_client(r, shaped, client));
    EXPECT_EQ(client, 1);
    r.authorization = "Bearer sk-c";
    EXPECT_FALSE(keyed.refuse_client(r, shaped, client));
    EXPECT_EQ(client, 2);
    r.authorization = "Bearer sk-d";
    EXPECT_TRUE(keyed.refuse_client(r, shaped, client));
    EXPECT_EQ(client, -1);
    Gatekeeper open({}, "");
    EXPECT_FALSE(open.refuse_client(r, shaped, client));
    EXPECT_EQ(client, -1);   // open endpoints: no key to count against
}

TEST(Gatekeeper, AdminTokenIs401Without403Wrong) {
    FakeRequest r;
    Gatekeeper none({}, "");
    EXPECT_EQ(none.refuse_admin(r, shaped)->status, 401);
    r.authorization = "Bearer anything";
    EXPECT_EQ(none.refuse_admin(r, shaped)->status, 403);   // no admin token configured: nobody is one
    Gatekeeper admin({"sk-client"}, "adm-1");
    r.authorization = "Bearer sk-client";
    EXPECT_EQ(admin.refuse_admin(r, shaped)->status, 403);  // a client key is no admin token
    r.authorization = "Bearer adm-1";
    EXPECT_FALSE(admin.refuse_admin(r, shaped));
}

TEST(KeySet, AnEmptyCandidateNeverMatches) {
    KeySet keys({"", "k"});   // the settings refuse empty keys; the check does not rely on that
    EXPECT_FALSE(keys.contains(""));
    EXPECT_TRUE(keys.contains("k"));
}

TEST(KeySet, ARememberedKeyIsStillCheckedWhole) {
    std::string long_key(KeySet::remembered_size + 1, 'L');   // too long to remember: hashed each time
    KeySet keys({"sk-a", "sk-b", "sk-c", "sk-d", "sk-e", "sk-f", long_key});
    for (int round = 0; round < 3; ++round) {   // the first round hashes, the next ones recall
        for (int i = 0; i < 6; ++i) EXPECT_EQ(keys.find("sk-" + std::string(1, char('a' + i))), i);   // 6 > 4 slots
        EXPECT_EQ(keys.find(long_key), 6);
        EXPECT_EQ(keys.find("sk-b"), 1);
        // What differs from a remembered key anywhere, its length included, is not it.
        EXPECT_EQ(keys.find("sk-"), -1);
        EXPECT_EQ(keys.find("sk-bb"), -1);
        EXPECT_EQ(keys.find(std::string("sk-b\0", 5)), -1);   // the zero padding is no part of a key
        EXPECT_EQ(keys.find("sk-B"), -1);
        EXPECT_EQ(keys.find(long_key.substr(1)), -1);
        EXPECT_EQ(keys.find(""), -1);
    }
}

TEST(KeySet, AReloadForgetsTheKeysItTookOut) {
    KeySet before({"sk-old", "sk-kept"});
    EXPECT_TRUE(before.contains("sk-old"));
    KeySet after({"sk-kept"});   // a reload's new worker builds its own sets
    EXPECT_FALSE(after.contains("sk-old"));
    EXPECT_EQ(after.find("sk-kept"), 0);
}

}  // namespace
}  // namespace agente::app
