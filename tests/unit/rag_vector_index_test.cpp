// Nearest neighbours in memory: exact search is exact, HNSW finds >= 95% of exact's top 10, and a
// filter never makes a search return fewer than k hits while k vectors match it.
#include "app/rag/vector_index.hpp"

#include "rag_fixtures.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <set>

namespace agente::rag {
namespace {

// Clustered unit vectors, like embeddings of texts on a handful of topics.
std::vector<std::vector<float>> clustered(std::size_t n, int dims, int clusters, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0, 1);
    std::vector<std::vector<float>> centres(std::size_t(clusters), std::vector<float>(std::size_t(dims), 0.0f));
    for (auto& c : centres)
        for (auto& x : c) x = g(rng);
    std::vector<std::vector<float>> out;
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<float> v = centres[i % std::size_t(clusters)];
        for (auto& x : v) x += 0.6f * g(rng);
        float norm = 0;
        for (float x : v) norm += x * x;
        for (auto& x : v) x /= std::sqrt(norm);
        out.push_back(std::move(v));
    }
    return out;
}

std::vector<long> labels(const std::vector<Hit>& hits) {
    std::vector<long> out;
    for (auto& h : hits) out.push_back(h.label);
    return out;
}

TEST(RagDot, MatchesTheTextbookSumAtEveryLength) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    for (std::size_t n : {0, 1, 7, 31, 32, 33, 100, 512}) {
        std::vector<float> a(n), b(n);
        for (std::size_t i = 0; i < n; ++i) a[i] = u(rng), b[i] = u(rng);
        double want = 0;
        for (std::size_t i = 0; i < n; ++i) want += double(a[i]) * double(b[i]);
        EXPECT_NEAR(dot(a.data(), b.data(), n), want, 1e-4) << n;
    }
}

TEST(RagVectorIndex, ExactSearchRanksByCosineAndKeepsToTheAllowedGroups) {
    VectorIndex idx(2);
    const float a[] = {1, 0}, b[] = {0.8f, 0.6f}, c[] = {0, 1};
    idx.add(10, 0, a);
    idx.add(20, 1, b);
    idx.add(30, 1, c);
    const float q[] = {1, 0};
    auto hits = idx.search(q, 2, nullptr, 10);
    EXPECT_EQ(labels(hits), (std::vector<long>{10, 20}));
    EXPECT_FLOAT_EQ(hits[0].score, 1.0f);
    EXPECT_FLOAT_EQ(hits[1].score, 0.8f);
    std::vector<char> only1{0, 1};
    EXPECT_EQ(labels(idx.search(q, 5, &only1, 10)), (std::vector<long>{20, 30}));
    EXPECT_TRUE(idx.remove(20));
    EXPECT_FALSE(idx.remove(20));
    EXPECT_EQ(labels(idx.search(q, 5, &only1, 10)), (std::vector<long>{30}));
    EXPECT_EQ(idx.size(), 2u);
    idx.add(10, 1, b);   // a label added again replaces its vector
    EXPECT_EQ(labels(idx.search(q, 1, nullptr, 10)), (std::vector<long>{10}));
    EXPECT_FLOAT_EQ(idx.search(q, 1, nullptr, 10)[0].score, 0.8f);
    EXPECT_EQ(idx.size(), 2u);
}

struct RagHnsw : ::testing::Test {
    static constexpr int dims = 32;
    static constexpr std::size_t n = 4000;
    std::vector<std::vector<float>> data = clustered(n, dims, 20, 7);
    VectorIndex exact_index{dims};
    VectorIndex hnsw_index{dims};

    void SetUp() override {
        for (std::size_t i = 0; i < n; ++i) {
            exact_index.add(long(i), int(i % 10), data[i].data());
            hnsw_index.add(long(i), int(i % 10), data[i].data());
        }
        hnsw_index.adopt(VectorIndex::build(hnsw_index.snapshot(), HnswOptions{16, 200, 96, 2}));   // the defaults
        ASSERT_TRUE(hnsw_index.uses_hnsw());
    }
};

// The share of exact search's top 10 that `idx.search` finds, over `queries`.
double recall_at_10(const VectorIndex& exact, const VectorIndex& idx, const std::vector<std::vector<float>>& queries) {
    std::size_t found = 0, wanted = 0;
    for (auto& q : queries) {
        auto truth = labels(exact.exact(q.data(), 10, nullptr));
        auto got = labels(idx.search(q.data(), 10, nullptr, HnswOptions{}.ef_search));
        std::set<long> t(truth.begin(), truth.end());
        for (long l : got) found += t.count(l);
        wanted += truth.size();
    }
    return double(found) / double(wanted);
}

TEST_F(RagHnsw, RecallAtTenIsAtLeast95PercentOfExact) {
    EXPECT_GE(recall_at_10(exact_index, hnsw_index, clustered(200, dims, 20, 99)), 0.95);
}

TEST_F(RagHnsw, AFilterReturnsKWheneverKMatchHoweverSelective) {
    auto queries = clustered(20, dims, 20, 5);
    // One group of ten (10%), then a selective filter: 3 vectors in all (groups 0..9 hold 400 each,
    // so these three are moved to a group of their own).
    for (long l : {5L, 1505L, 3005L}) hnsw_index.add(l, 42, data[std::size_t(l)].data());
    std::vector<char> one_group(43, 0);
    one_group[3] = 1;
    std::vector<char> tiny(43, 0);
    tiny[42] = 1;
    for (auto& q : queries) {
        auto hits = hnsw_index.search(q.data(), 50, &one_group, 64);
        EXPECT_EQ(hits.size(), 50u);
        for (auto& h : hits) EXPECT_EQ(h.label % 10, 3);
        auto few = hnsw_index.search(q.data(), 10, &tiny, 64);
        EXPECT_EQ(few.size(), 3u) << "all three matching vectors, not the post-filtered remains of a top 10";
    }
}

TEST_F(RagHnsw, AWideFilterIsAppliedInsideTheWalkWithExactsRecall) {
    // 60% allowed: too many for exact search to be cheaper, so the HNSW walk filters as it goes.
    std::vector<char> most{1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
    auto queries = clustered(100, dims, 20, 17);
    std::size_t found = 0, wanted = 0;
    for (auto& q : queries) {
        auto truth = labels(exact_index.exact(q.data(), 10, &most));
        auto got = hnsw_index.search(q.data(), 10, &most, HnswOptions{}.ef_search);
        ASSERT_EQ(got.size(), 10u);
        std::set<long> t(truth.begin(), truth.end());
        for (auto& h : got) {
            EXPECT_LT(h.label % 10, 6);
            found += t.count(h.label);
        }
        wanted += truth.size();
    }
    EXPECT_GE(double(found) / double(wanted), 0.95);
}

TEST_F(RagHnsw, RowsAddedAfterTheSnapshotAreInsertedWhenTheGraphIsAdopted) {
    VectorIndex idx(dims);
    for (std::size_t i = 0; i < 1000; ++i) idx.add(long(i), 0, data[i].data());
    auto snap = idx.snapshot();
    for (std::size_t i = 1000; i < 1200; ++i) idx.add(long(i), 0, data[i].data());   // during the build
    idx.remove(3);
    idx.adopt(VectorIndex::build(snap, HnswOptions{}));
    EXPECT_EQ(idx.size(), 1199u);
    auto hits = idx.search(data[1100].data(), 1, nullptr, 64);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].label, 1100);
    for (auto& h : idx.search(data[3].data(), 20, nullptr, 64)) EXPECT_NE(h.label, 3);
    EXPECT_GT(idx.memory_bytes(), 1199u * dims * sizeof(float));
}

// A saved graph, loaded by a process whose store changed meanwhile: chunk 10 gone, chunk 11
// re-embedded (another vector), chunks 4000..4099 new, and the groups renumbered.
TEST_F(RagHnsw, ASavedGraphIsAdoptedWithWhatChangedSinceAndSearchesAsWellAsANewOne) {
    testing::ScratchDir dir;
    std::string path = dir.path() + "/g.hnsw";
    hnsw_index.save_graph(path);
    auto graph = VectorIndex::load_graph(dims, path);
    auto more = clustered(100, dims, 20, 23);
    VectorIndex idx(dims);
    for (std::size_t i = 0; i < n; ++i)
        if (i != 10) idx.add(long(i), int((i + 1) % 10), i == 11 ? more[0].data() : data[i].data());
    for (std::size_t i = 0; i < more.size(); ++i) idx.add(long(n + i), int(i % 10), more[i].data());
    ASSERT_TRUE(idx.adopt_saved(graph, hnsw_index.row_labels(), 0.75));
    EXPECT_TRUE(idx.uses_hnsw());
    EXPECT_EQ(idx.size(), n - 1 + more.size());
    EXPECT_FALSE(idx.contains(10));
    EXPECT_EQ(labels(idx.search(more[0].data(), 1, nullptr, 64))[0], 11);       // its new vector
    EXPECT_EQ(labels(idx.search(more[50].data(), 1, nullptr, 64))[0], long(n + 50));
    std::vector<char> group(10, 0);
    group[4] = 1;   // the new numbering: chunk 3 is in group 4
    for (auto& h : idx.search(data[3].data(), 20, &group, 64)) EXPECT_EQ((h.label + 1) % 10, 4) << h.label;
    EXPECT_GE(recall_at_10(idx, idx, clustered(100, dims, 20, 99)), 0.95);
}

TEST_F(RagHnsw, ASavedGraphThatMatchesTooLittleIsNotAdopted) {
    testing::ScratchDir dir;
    std::string path = dir.path() + "/g.hnsw";
    hnsw_index.save_graph(path);
    VectorIndex idx(dims);
    for (std::size_t i = 0; i < n / 2; ++i) idx.add(long(i), 0, data[i].data());   // half the store deleted
    EXPECT_FALSE(idx.adopt_saved(VectorIndex::load_graph(dims, path), hnsw_index.row_labels(), 0.75));
    EXPECT_FALSE(idx.uses_hnsw());
    EXPECT_EQ(idx.size(), n / 2);
}

TEST_F(RagHnsw, ASavedGraphWithALinkOutOfRangeOrAnotherDimensionIsRefused) {
    testing::ScratchDir dir;
    std::string path = dir.path() + "/g.hnsw";
    hnsw_index.save_graph(path);
    EXPECT_THROW(VectorIndex::load_graph(dims * 2, path), std::runtime_error);
    {
        // hnswlib's header is 96 bytes; node 0's level-0 list follows: its count, then its links.
        std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
        io.seekp(96 + 4);
        const unsigned int far = 0xfffffff0u;
        io.write(reinterpret_cast<const char*>(&far), sizeof far);
    }
    EXPECT_THROW(VectorIndex::load_graph(dims, path), std::runtime_error);
}

}  // namespace
}  // namespace agente::rag
