// The PostgreSQL store's pure pieces: the text forms its values travel in (bytea, pgvector's vector)
// and which failures are the database being unavailable (a 503) rather than a statement refused.
// The store itself is exercised against a real PostgreSQL by integration.test_rag_postgres and
// test_rag_pgvector.
#include "app/common/postgres.hpp"
#include "app/rag/pg_store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>

namespace agente::rag {
namespace {

TEST(RagPgStore, ByteaTravelsAsHexBothWaysWithEveryByteValue) {
    std::string all;
    for (int b = 0; b < 256; ++b) all.push_back(char(b));
    std::string text = bytea_text(all);
    EXPECT_EQ(text.substr(0, 6), "\\x0001");
    EXPECT_EQ(text.size(), 2 + 2 * all.size());
    EXPECT_EQ(from_bytea_text(text), all);
    EXPECT_EQ(from_bytea_text("\\xDEADbeef"), std::string("\xde\xad\xbe\xef"));
    EXPECT_EQ(from_bytea_text(bytea_text("")), "");
}

TEST(RagPgStore, ByteaNotInHexIsAnErrorNotGarbage) {
    EXPECT_THROW(from_bytea_text("abc"), std::runtime_error);            // bytea_output = escape
    EXPECT_THROW(from_bytea_text("\\xzz"), std::runtime_error);
}

TEST(RagPgStore, AVectorIsWrittenExactlyAsPgvectorReadsIt) {
    EXPECT_EQ(vector_text({}), "[]");
    EXPECT_EQ(vector_text({0.5f, -1.0f, 2.5e-07f}), "[0.5,-1,2.5e-07]");
    // Every float comes back as the same float (shortest round trip), whatever its size.
    std::vector<float> v{0.1f, 1.0f / 3.0f, std::numeric_limits<float>::min(), std::numeric_limits<float>::max(), -0.0f};
    std::string text = vector_text(v);
    std::vector<float> back;
    const char* p = text.c_str() + 1;
    for (std::size_t i = 0; i < v.size(); ++i) {
        char* end = nullptr;
        back.push_back(std::strtof(p, &end));
        p = end + 1;
    }
    EXPECT_EQ(back, v);
}

TEST(RagPgStore, ADatabaseDownOrNotMigratedIsUnavailableAStatementRefusedIsNot) {
    EXPECT_TRUE(pg::database_unavailable(pg::Error("connection refused", true)));
    EXPECT_TRUE(pg::database_unavailable(pg::Error("the PostgreSQL schema was never created", false)));
    EXPECT_TRUE(pg::database_unavailable(pg::Error("terminating connection due to administrator command", false, "57P01")));
    EXPECT_TRUE(pg::database_unavailable(pg::Error("canceling statement due to statement timeout", false, "57014")));
    EXPECT_TRUE(pg::database_unavailable(pg::Error("too many connections", false, "53300")));
    EXPECT_TRUE(pg::database_unavailable(pg::Error("connection failure", false, "08006")));
    EXPECT_FALSE(pg::database_unavailable(pg::Error("syntax error", false, "42601")));
    EXPECT_FALSE(pg::database_unavailable(pg::Error("duplicate key", false, "23505")));
}

}  // namespace
}  // namespace agente::rag
