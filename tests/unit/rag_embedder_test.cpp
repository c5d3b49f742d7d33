// Embeddings through the gateway's attempt loop, called from a plain thread that blocks on the
// answer while the gateway's io_context runs on a thread of its own: batches, retries, fallback, and
// a failure that says why.
#include "app/rag/gateway_embedder.hpp"

#include "rag_fake_upstream.hpp"

#include <agente/config.hpp>

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <cmath>

namespace agente::rag {
namespace {

Config config_for(const testing::FakeUpstream& up) {
    std::string text = "[gateway]\nretries = 1\nretry_backoff = 0.01\n"
                       "[providers.local]\nbase_url = \"" + up.base_url() + "\"\n"
                       "[models.\"emb\"]\ntargets = [{ provider = \"local\", model = \"ok\" }]\n"
                       "[models.\"flaky\"]\ntargets = [{ provider = \"local\", model = \"flaky\" }]\n"
                       "[models.\"fallback\"]\ntargets = [{ provider = \"local\", model = \"fail500\" }, "
                       "{ provider = \"local\", model = \"ok\" }]\n"
                       "[models.\"down\"]\ntargets = [{ provider = \"local\", model = \"fail500\" }]\n";
    Config c;
    c.app = std::make_shared<toml::table>(toml::parse(text, std::string_view("server.conf")));
    c.app_source = "server.conf";
    return c;
}

struct RagEmbedder : ::testing::Test {
    testing::FakeUpstream up;
    Config config = config_for(up);
    EmbeddingLoop loop{config};
    void SetUp() override { ASSERT_GT(up.port(), 0) << "the fake upstream did not start"; }
};

TEST_F(RagEmbedder, OneUnitVectorPerTextInOrderAcrossBatches) {
    auto e = loop.embedder("emb", 2);
    EXPECT_EQ(e->model(), "emb");
    std::vector<std::string> texts{"honey bees", "ocean tides", "honey bees", "rust ownership", "bees"};
    auto vs = e->embed(texts);
    ASSERT_EQ(vs.size(), 5u);
    for (auto& v : vs) {
        ASSERT_EQ(v.size(), 8u);
        double norm = 0;
        for (float x : v) norm += double(x) * x;
        EXPECT_NEAR(norm, 1.0, 1e-5);
    }
    EXPECT_EQ(vs[0], vs[2]) << "deterministic, and in the order of the texts";
    EXPECT_NE(vs[0], vs[1]);
}

TEST_F(RagEmbedder, AFailedAttemptIsRetriedAndAFailedTargetFallsBack) {
    EXPECT_EQ(loop.embedder("flaky", 16)->embed({"a"}).size(), 1u);      // 500 once, then the retry
    EXPECT_EQ(loop.embedder("fallback", 16)->embed({"a"}).size(), 1u);   // fail500's target, then ok's
}

TEST_F(RagEmbedder, WhenEveryTargetFailsTheErrorSaysWhy) {
    try {
        loop.embedder("down", 16)->embed({"a"});
        FAIL() << "no error";
    } catch (const EmbeddingError& e) {
        EXPECT_EQ(std::string(e.what()), "embedding model \"down\": local: upstream answered 500");
    }
    EXPECT_THROW(loop.embedder("nope", 16), std::invalid_argument);
}

TEST_F(RagEmbedder, ACancelStopsBetweenBatches) {
    auto e = loop.embedder("emb", 1);
    int asked = 0;
    EXPECT_THROW(e->embed({"a", "b", "c"}, [&] { return ++asked > 1; }), EmbeddingError);
    EXPECT_EQ(asked, 2);
}

TEST(RagNormalize, UnitLengthAndZeroStaysZero) {
    std::vector<float> v{3, 4};
    normalize(v);
    EXPECT_FLOAT_EQ(v[0], 0.6f);
    EXPECT_FLOAT_EQ(v[1], 0.8f);
    std::vector<float> z{0, 0};
    normalize(z);
    EXPECT_EQ(z, (std::vector<float>{0, 0}));
}

}  // namespace
}  // namespace agente::rag
