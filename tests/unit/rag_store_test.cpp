// The RAG store in SQLite: schema migrations, files, vector stores and attachments, the embedding
// cache, BM25 with per-store stemmers, and crash safety: an ingest whose process died is resumed by
// the next process, or ends failed once it has been interrupted too often.
#include "app/rag/owner.hpp"
#include "app/rag/schema.hpp"
#include "app/rag/sqlite_store.hpp"

#include "rag_fixtures.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

namespace agente::rag {
namespace {

using testing::ScratchDir;
using namespace std::chrono_literals;

constexpr const char* owner_a = "1:1";   // an owner string no live process has

struct RagStore : ::testing::Test {
    ScratchDir dir;
    std::string path = dir.path() + "/rag.sqlite3";
    SqliteStore db{path, 2000ms};

    StoredChunk chunk(const std::string& text, std::vector<std::string> headings = {}, int page = 0) {
        Chunk c{text, std::move(headings), page, 1};
        return {c, chunk_hash(c)};
    }
    // A store with one completed file made of `texts`.
    std::pair<StoreRecord, AttachmentRecord> ingested(const std::string& language, const std::vector<std::string>& texts,
                                                      const std::string& attributes = "{}") {
        StoreRecord s = db.create_store("s", language, "{}");
        FileRecord f = db.add_file("f.txt", "assistants", "text/plain", "x");
        db.attach(s.id, f.id, attributes, {});
        auto c = db.claim_next("me:1", 3);
        std::vector<StoredChunk> chunks;
        for (auto& t : texts) chunks.push_back(chunk(t));
        EXPECT_TRUE(db.complete(*c, "me:1", chunks, "", 0, 0));
        return {*db.store(s.id), *db.attachment(s.id, f.id)};
    }
};

TEST_F(RagStore, AFreshDatabaseIsAtTheLastSchemaVersion) {
    EXPECT_EQ(db.schema_version(), rag_migrations().back().version);
    SqliteStore again(path, 2000ms);   // opening again applies nothing
    EXPECT_EQ(again.schema_version(), rag_migrations().back().version);
}

TEST_F(RagStore, MigrationsApplyInOrderEachOnceAndANewerFileIsRefused) {
    sqlite::Db raw(dir.path() + "/m.sqlite3", 1000ms);
    const Migration two[] = {{1, "CREATE TABLE a(x)"}, {2, "CREATE TABLE b(x)"}};
    migrate(raw, std::span(two, 1));
    EXPECT_EQ(user_version(raw), 1);
    migrate(raw, two);   // only the second runs: a second CREATE TABLE a would throw
    EXPECT_EQ(user_version(raw), 2);
    try {
        migrate(raw, std::span(two, 1));
        FAIL() << "a file of schema 2 opened by a binary that knows 1";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("has schema version 2, newer than this binary knows (1)"), std::string::npos);
    }
}

TEST_F(RagStore, AFailedMigrationLeavesThePreviousVersion) {
    sqlite::Db raw(dir.path() + "/m.sqlite3", 1000ms);
    const Migration bad[] = {{1, "CREATE TABLE a(x)"}, {2, "CREATE TABLE b(x); THIS IS NOT SQL"}};
    EXPECT_THROW(migrate(raw, bad), std::runtime_error);
    EXPECT_EQ(user_version(raw), 1);
    sqlite::Stmt s(raw, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'");
    s.step();
    EXPECT_EQ(s.integer(0), 0);   // the half-applied migration was rolled back
}

TEST_F(RagStore, FilesKeepTheirBytesAndListNewestFirstByPages) {
    FileRecord a = db.add_file("a.md", "assistants", "text/markdown", "# A");
    FileRecord b = db.add_file("b.txt", "assistants", "text/plain", std::string("b\0b", 3));
    FileRecord c = db.add_file("c.txt", "batch", "text/plain", "c");
    EXPECT_EQ(a.id.substr(0, 5), "file-");
    EXPECT_EQ(b.bytes, 3);
    EXPECT_EQ(*db.file_content(b.id), std::string("b\0b", 3));
    EXPECT_EQ(db.file(a.id)->filename, "a.md");
    auto page = db.files({2, "", "", false, "", ""});
    ASSERT_EQ(page.items.size(), 2u);
    EXPECT_EQ(page.items[0].id, c.id);
    EXPECT_TRUE(page.has_more);
    auto next = db.files({2, page.items[1].id, "", false, "", ""});
    ASSERT_EQ(next.items.size(), 1u);
    EXPECT_EQ(next.items[0].id, a.id);
    EXPECT_FALSE(next.has_more);
    EXPECT_EQ(db.files({20, "", "", true, "", ""}, "batch").items.size(), 1u);
    EXPECT_TRUE(db.delete_file(a.id));
    EXPECT_FALSE(db.delete_file(a.id));
    EXPECT_FALSE(db.file_content(a.id));
}

TEST_F(RagStore, AnAttachmentIsInProgressUntilItsIngestCompletesInOneStep) {
    StoreRecord s = db.create_store("docs", "english", R"({"team":"a"})");
    FileRecord f = db.add_file("f.md", "assistants", "text/markdown", "x");
    AttachmentRecord a = db.attach(s.id, f.id, R"({"topic":"bees"})", {300, 100});
    EXPECT_EQ(a.status, "in_progress");
    EXPECT_EQ(a.chunking.max_tokens, 300);
    EXPECT_EQ(db.store(s.id)->counts.in_progress, 1);
    std::string me = this_process_owner();
    auto claim = db.claim_next(me, 3);
    ASSERT_TRUE(claim);
    EXPECT_EQ(claim->file_id, f.id);
    EXPECT_EQ(claim->attempt, 1);
    EXPECT_FALSE(db.claim_next("other:1", 3)) << "nobody else takes a file its live owner ingests";
    long generation = db.store(s.id)->generation;
    ASSERT_TRUE(db.complete(*claim, me, {chunk("Honey bees.", {"Bees"}), chunk("Queens.")}, "emb", 4, 2));
    AttachmentRecord done = *db.attachment(s.id, f.id);
    EXPECT_EQ(done.status, "completed");
    EXPECT_EQ(done.chunks, 2);
    StoreRecord after = *db.store(s.id);
    EXPECT_EQ(after.counts.completed, 1);
    EXPECT_EQ(after.embedding_model, "emb");
    EXPECT_EQ(after.dims, 4);
    EXPECT_GT(after.generation, generation);
    auto rows = db.chunks(db.chunk_ids(s.rowid));
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].heading, "Bees");
    EXPECT_EQ(rows[1].seq, 1);
}

TEST_F(RagStore, AnotherModelForAStoreWithVectorsIsAClearErrorNotAMix) {
    StoreRecord s = db.create_store("docs", "english", "{}");
    for (int i = 0; i < 2; ++i) {
        FileRecord f = db.add_file("f.md", "assistants", "text/markdown", "x");
        db.attach(s.id, f.id, "{}", {});
    }
    auto first = db.claim_next("me:1", 3);
    ASSERT_TRUE(db.complete(*first, "me:1", {chunk("one")}, "emb-a", 256, 1));
    auto second = db.claim_next("me:1", 3);
    try {
        db.complete(*second, "me:1", {chunk("two")}, "emb-b", 256, 1);
        FAIL() << "a second model's vectors went into the store";
    } catch (const ModelMismatch& e) {
        EXPECT_EQ(std::string(e.what()), "vector store " + s.id + " holds vectors of model \"emb-a\" (256 dimensions), "
                                          "but this file was embedded with model \"emb-b\" (256 dimensions): use the "
                                          "store's model ([rag] embedding_model), or a new vector store");
    }
    EXPECT_THROW(db.complete(*second, "me:1", {chunk("two")}, "emb-a", 512, 1), ModelMismatch);   // same name, other size
    EXPECT_EQ(db.chunk_ids(s.rowid).size(), 1u);
}

TEST_F(RagStore, AFileWhoseOwnerDiedIsResumedByTheNextProcess) {
    StoreRecord s = db.create_store("docs", "english", "{}");
    FileRecord f = db.add_file("f.md", "assistants", "text/markdown", "x");
    db.attach(s.id, f.id, "{}", {});
    // A child claims the file and is SIGKILLed mid-ingest.
    pid_t child = fork();
    if (child == 0) {
        SqliteStore mine(path, 2000ms);
        auto c = mine.claim_next(this_process_owner(), 3);
        _exit(c ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(db.attachment(s.id, f.id)->status, "in_progress");
    auto c = db.claim_next("me:1", 3);
    ASSERT_TRUE(c) << "the dead child's file is ours to resume";
    EXPECT_EQ(c->attempt, 2);
}

TEST_F(RagStore, AFileInterruptedTooOftenEndsFailedVisibly) {
    StoreRecord s = db.create_store("docs", "english", "{}");
    FileRecord f = db.add_file("f.pdf", "assistants", "application/pdf", "x");
    db.attach(s.id, f.id, "{}", {});
    for (int i = 1; i <= 3; ++i) {
        auto c = db.claim_next(std::to_string(i) + ":dead", 3);   // each owner "dies" at once
        ASSERT_TRUE(c);
        EXPECT_EQ(c->attempt, i);
    }
    EXPECT_FALSE(db.claim_next("me:1", 3));
    AttachmentRecord a = *db.attachment(s.id, f.id);
    EXPECT_EQ(a.status, "failed");
    EXPECT_EQ(a.error_code, "server_error");
    EXPECT_NE(a.error_message.find("ingest interrupted 3 times"), std::string::npos);
    // Attaching it again starts over.
    EXPECT_EQ(db.attach(s.id, f.id, "{}", {}).status, "in_progress");
    EXPECT_EQ(db.claim_next("me:1", 3)->attempt, 1);
}

TEST_F(RagStore, ALostClaimCompletesNothing) {
    StoreRecord s = db.create_store("docs", "english", "{}");
    FileRecord f = db.add_file("f.md", "assistants", "text/markdown", "x");
    std::string batch = db.create_batch(s.id);
    db.attach(s.id, f.id, "{}", {}, batch);
    auto c = db.claim_next("me:1", 3);
    db.cancel_batch(batch);
    EXPECT_FALSE(db.still_claimed(c->attachment, "me:1"));
    EXPECT_FALSE(db.complete(*c, "me:1", {chunk("late")}, "", 0, 0));
    EXPECT_EQ(db.attachment(s.id, f.id)->status, "cancelled");
    EXPECT_EQ(db.batch_counts(batch).cancelled, 1);
    EXPECT_TRUE(db.chunk_ids(s.rowid).empty());
}

TEST_F(RagStore, EmbeddingsAreCachedByModelAndContentHash) {
    Chunk c{"text", {}, 0, 1};
    std::string h = chunk_hash(c);
    EXPECT_EQ(h.size(), 32u);
    EXPECT_FALSE(db.cached_vectors("emb", {h})[0]);
    db.put_vectors("emb", {h}, {{0.5f, -0.5f}});
    auto got = db.cached_vectors("emb", {h});
    ASSERT_TRUE(got[0]);
    EXPECT_EQ(*got[0], (std::vector<float>{0.5f, -0.5f}));
    EXPECT_FALSE(db.cached_vectors("other", {h})[0]);
    Chunk headed{"text", {"Section"}, 0, 1};
    EXPECT_NE(chunk_hash(headed), h) << "the heading path is part of what is embedded";
}

TEST_F(RagStore, Bm25FindsEnglishWordsByTheirStem) {
    auto [s, a] = ingested("english", {"Honey bees make honey.", "The ocean's tides rise twice daily.",
                                        "Programming languages with ownership."});
    auto hits = db.bm25(s.rowid, "bee making", 10, std::nullopt);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(db.chunks({hits[0].first})[0].text, "Honey bees make honey.");
    EXPECT_GT(hits[0].second, 0);
    EXPECT_TRUE(db.bm25(s.rowid, "\"quoted\" AND OR NOT * ( )", 10, std::nullopt).empty()) << "no query syntax";
    EXPECT_TRUE(db.bm25(s.rowid, "", 10, std::nullopt).empty());
}

TEST_F(RagStore, Bm25InPortugueseFoldsAccentsEitherWayRound) {
    auto [s, a] = ingested("portuguese", {"As informações da empresa subiram.", "As abelhas produzem mel."});
    auto text_of = [&](const std::string& q) {
        auto hits = db.bm25(s.rowid, q, 10, std::nullopt);
        return hits.empty() ? std::string() : db.chunks({hits[0].first})[0].text;
    };
    EXPECT_EQ(text_of("abelha"), "As abelhas produzem mel.");
    EXPECT_EQ(text_of("informação"), "As informações da empresa subiram.");    // Snowball: both "inform"
    EXPECT_EQ(text_of("informacoes"), "As informações da empresa subiram.");   // typed without accents
    EXPECT_EQ(text_of("INFORMAÇÕES"), "As informações da empresa subiram.");
    EXPECT_EQ(text_of("empresas"), "As informações da empresa subiram.");
}

TEST_F(RagStore, Bm25KeepsToTheAllowedAttachments) {
    StoreRecord s = db.create_store("s", "english", "{}");
    std::vector<long> atts;
    for (const char* t : {"bees in hives", "bees in gardens"}) {
        FileRecord f = db.add_file("f.txt", "assistants", "text/plain", t);
        db.attach(s.id, f.id, "{}", {});
        auto c = db.claim_next("me:1", 3);
        db.complete(*c, "me:1", {chunk(t)}, "", 0, 0);
        atts.push_back(c->attachment);
    }
    EXPECT_EQ(db.bm25(s.rowid, "bees", 10, std::nullopt).size(), 2u);
    auto only = db.bm25(s.rowid, "bees", 10, std::vector<long>{atts[1]});
    ASSERT_EQ(only.size(), 1u);
    EXPECT_EQ(db.chunks({only[0].first})[0].text, "bees in gardens");
    EXPECT_TRUE(db.bm25(s.rowid, "bees", 10, std::vector<long>{}).empty());
}

TEST_F(RagStore, DetachingOrDeletingRemovesChunksFromSearchAndTheirOrphanedVectors) {
    auto [s, a] = ingested("english", {"bees", "tides"});
    Chunk bees{"bees", {}, 0, 1};
    db.put_vectors("emb", {chunk_hash(bees)}, {{1.0f}});
    long generation = db.store(s.id)->generation;
    EXPECT_TRUE(db.detach(s.id, a.file_id));
    EXPECT_TRUE(db.bm25(s.rowid, "bees", 10, std::nullopt).empty());
    EXPECT_TRUE(db.chunk_ids(s.rowid).empty());
    EXPECT_FALSE(db.cached_vectors("emb", {chunk_hash(bees)})[0]);
    EXPECT_GT(db.store(s.id)->generation, generation);
    EXPECT_TRUE(db.delete_store(s.id));
    EXPECT_FALSE(db.store(s.id));
}

TEST_F(RagStore, AttachingAgainUpdatesAttributesAndKeepsTheChunks) {
    auto [s, a] = ingested("english", {"bees"}, R"({"topic":"bees"})");
    AttachmentRecord again = db.attach(s.id, a.file_id, R"({"topic":"insects"})", {});
    EXPECT_EQ(again.status, "completed");
    EXPECT_EQ(again.attributes, R"({"topic":"insects"})");
    EXPECT_EQ(db.completed_attachments(s.rowid)[0].attributes, R"({"topic":"insects"})");
}

}  // namespace
}  // namespace agente::rag
