// The engine end to end with a deterministic embedder: ingest, the embedding cache, filters that
// always fill max_num_results, clear failures, model mismatches, a process killed mid-ingest, and the
// CLI's paths.
#include "app/rag/engine.hpp"

#include "rag_fake_embedder.hpp"
#include "rag_fixtures.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace agente::rag {
namespace {

using testing::FakeEmbedder;
using testing::ScratchDir;
using namespace std::chrono_literals;

const std::map<std::string, std::string> docs{
    {"bees.md", "# Bees\n\nHoney bees live in hives and make honey from the nectar of flowers. A colony has one queen.\n"},
    {"rust.md", "# Rust\n\nRust is a systems programming language with ownership and borrowing, and no garbage collector.\n"},
    {"tides.md", "# Tides\n\nOcean tides rise and fall twice a day, pulled by the gravity of the moon and the sun.\n"},
};

struct RagEngine : ::testing::Test {
    ScratchDir dir;
    std::shared_ptr<FakeEmbedder> embedder = std::make_shared<FakeEmbedder>();
    std::unique_ptr<Engine> engine;

    void SetUp() override {
        unsetenv("STATE_DIRECTORY");
        engine = make_engine(embedder);
    }
    std::unique_ptr<Engine> make_engine(std::shared_ptr<Embedder> e, int exact_below = 20000) {
        RagSettings s;
        s.state_dir = dir.path();
        s.exact_search_below = exact_below;
        s.embedding_batch_size = 2;
        return std::make_unique<Engine>(s, std::move(e));
    }
    std::string upload(const std::string& name, const std::string& text, const std::string& type = "text/markdown") {
        return engine->db()->add_file(name, "assistants", type, text).id;
    }
    // Attaches and runs the ingest to its end in this thread.
    AttachmentRecord attach(const std::string& store, const std::string& file, const std::string& attrs = "{}") {
        engine->db()->attach(store, file, attrs, {});
        while (engine->ingest_next()) {
        }
        return *engine->db()->attachment(store, file);
    }
    std::string store_with_docs() {
        std::string vs = engine->db()->create_store("acceptance", "english", "{}").id;
        for (auto& [name, text] : docs)
            EXPECT_EQ(attach(vs, upload(name, text), nlohmann::json{{"topic", name.substr(0, name.size() - 3)}}.dump()).status,
                      "completed");
        return vs;
    }
    std::string top(const std::string& vs, const std::string& q, Ranker ranker = Ranker::hybrid,
                    std::optional<Filter> filter = std::nullopt) {
        SearchRequest r;
        r.query = q;
        r.max_num_results = 3;
        r.ranker = ranker;
        r.filter = std::move(filter);
        auto page = engine->search(vs, r);
        return page.hits.empty() ? "" : page.hits[0].filename;
    }
};

Filter eq(const std::string& key, const nlohmann::json& value) {
    std::string problem;
    return *parse_filter({{"type", "eq"}, {"key", key}, {"value", value}}, problem);
}

TEST_F(RagEngine, EachFileIsFoundFirstByItsTopicWhateverTheRanker) {
    std::string vs = store_with_docs();
    for (Ranker r : {Ranker::hybrid, Ranker::vector, Ranker::text}) {
        EXPECT_EQ(top(vs, "how do bees make honey", r), "bees.md");
        EXPECT_EQ(top(vs, "ownership and borrowing in a language", r), "rust.md");
        EXPECT_EQ(top(vs, "why does the ocean rise twice a day", r), "tides.md");
    }
    SearchRequest q;
    q.query = "honey bees";
    auto page = engine->search(vs, q);
    ASSERT_FALSE(page.hits.empty());
    const SearchHit& h = page.hits[0];
    EXPECT_EQ(h.heading, "Bees");
    EXPECT_EQ(h.attributes, nlohmann::json({{"topic", "bees"}}));
    EXPECT_EQ(h.text.substr(0, 15), "Honey bees live");
    EXPECT_GT(h.score, 0.9) << "first in both rankings";
    EXPECT_EQ(h.vector_rank, 1);
    EXPECT_EQ(h.text_rank, 1);
}

TEST_F(RagEngine, AFilterHoldsEvenAgainstTheBestMatch) {
    std::string vs = store_with_docs();
    EXPECT_EQ(top(vs, "gravity of the moon", Ranker::hybrid, eq("topic", "bees")), "bees.md");
    EXPECT_EQ(top(vs, "gravity of the moon", Ranker::text, eq("topic", "nothing")), "");
}

TEST_F(RagEngine, AnUnchangedFileEmbedsNothingAndAChangedOneOnlyItsChangedChunks) {
    std::string vs = store_with_docs();
    long before = embedder->embedded;
    EXPECT_EQ(attach(vs, upload("bees.md", docs.at("bees.md"))).status, "completed");
    EXPECT_EQ(embedder->embedded, before) << "the same chunks under a new file id";
    std::string two = "# Bees\n\nHoney bees live in hives.\n\n# Wasps\n\nWasps hunt.\n";
    attach(vs, upload("two.md", two));
    long after_two = embedder->embedded;
    EXPECT_EQ(after_two - before, 2);
    auto a = attach(vs, upload("two.md", "# Bees\n\nHoney bees live in hives.\n\n# Wasps\n\nWasps hunt insects.\n"));
    EXPECT_EQ(embedder->embedded - after_two, 1) << "only the Wasps section changed";
    EXPECT_EQ(a.embedded, 1);
    EXPECT_EQ(a.chunks, 2);
}

// Notes `from` to `to` - 1, a third of them on bees; their file ids.
std::vector<std::string> add_notes(RagEngine& t, const std::string& vs, int from, int to) {
    std::vector<std::string> ids;
    for (int i = from; i < to; ++i) {
        std::string text = "# Note " + std::to_string(i) + "\n\nnote number " + std::to_string(i) + " about " +
                           (i % 3 ? "tides and the moon" : "bees and honey") + ".\n";
        ids.push_back(t.upload("n" + std::to_string(i) + ".md", text));
        t.attach(vs, ids.back(), nlohmann::json{{"n", i}, {"bees", i % 3 == 0}}.dump());
    }
    return ids;
}

TEST_F(RagEngine, MaxNumResultsComeBackWheneverThatManyChunksMatchEvenThroughHnsw) {
    engine = make_engine(embedder, 30);   // HNSW above 30 vectors
    std::string vs = engine->db()->create_store("many", "english", "{}").id;
    add_notes(*this, vs, 0, 60);
    SearchRequest warm;
    warm.query = "moon";
    engine->search(vs, warm);              // loads the index; queues the graph's build
    engine->indexes().wait_for_builds();
    for (Ranker r : {Ranker::vector, Ranker::hybrid, Ranker::text}) {
        SearchRequest q;
        q.query = "tides and the moon";    // the best matches are all excluded by the filter
        q.max_num_results = 20;
        q.ranker = r;
        q.filter = eq("bees", true);
        auto page = engine->search(vs, q);
        EXPECT_EQ(page.hits.size(), 20u);   // BM25 finds the bees notes by "and"
        for (auto& h : page.hits) EXPECT_EQ(h.attributes["bees"], true);
    }
}

// What a process finds for a few questions, by vectors alone (through its graph, once built).
std::vector<std::string> vector_answers(Engine& e, const std::string& vs) {
    e.search(vs, SearchRequest{.query = "moon"});   // loads the store; queues its graph
    e.indexes().wait_for_builds();
    std::vector<std::string> out;
    for (const char* q : {"note number 7", "bees and honey", "tides", "note number 64 about"}) {
        SearchRequest r;
        r.query = q;
        r.max_num_results = 5;
        r.ranker = Ranker::vector;
        for (auto& h : e.search(vs, r).hits) out.push_back(h.filename);
    }
    return out;
}

TEST_F(RagEngine, AReplacedProcessLoadsTheSavedGraphAndCatchesUpWithWhatChangedSince) {
    engine = make_engine(embedder, 30);
    std::string vs = engine->db()->create_store("many", "english", "{}").id;
    auto ids = add_notes(*this, vs, 0, 60);
    auto first = vector_answers(*engine, vs);
    EXPECT_EQ(engine->indexes().counts().built, 1);

    engine = make_engine(embedder, 30);   // a dirty worker replaced: same state directory, nothing in memory
    EXPECT_EQ(vector_answers(*engine, vs), first);
    EXPECT_EQ(engine->indexes().counts().loaded, 1);
    EXPECT_EQ(engine->indexes().counts().built, 0);

    // Changes after the save: the next process loads the graph, drops what is gone, adds what is new.
    engine->db()->detach(vs, ids[7]);
    add_notes(*this, vs, 60, 66);
    auto before_restart = vector_answers(*engine, vs);
    engine = make_engine(embedder, 30);
    EXPECT_EQ(vector_answers(*engine, vs), before_restart);
    EXPECT_EQ(engine->indexes().counts().loaded, 1);
    EXPECT_EQ(engine->indexes().counts().built, 0);
    EXPECT_NE(std::find(before_restart.begin(), before_restart.end(), "n64.md"), before_restart.end());
    // A deleted store's graph goes with it.
    EXPECT_FALSE(std::filesystem::is_empty(dir.path() + "/rag-index"));
    EXPECT_TRUE(engine->delete_store(vs));
    EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/rag-index"));
}

TEST_F(RagEngine, ASavedGraphCutShortOrOverwrittenIsRebuiltNotTrusted) {
    engine = make_engine(embedder, 30);
    std::string vs = engine->db()->create_store("many", "english", "{}").id;
    add_notes(*this, vs, 0, 60);
    auto first = vector_answers(*engine, vs);
    for (auto& f : std::filesystem::directory_iterator(dir.path() + "/rag-index"))
        if (f.path().extension() == ".hnsw") std::filesystem::resize_file(f.path(), std::filesystem::file_size(f.path()) / 2);
    engine = make_engine(embedder, 30);
    EXPECT_EQ(vector_answers(*engine, vs), first);
    EXPECT_EQ(engine->indexes().counts().built, 1);   // and saved again, whole
    engine = make_engine(embedder, 30);
    EXPECT_EQ(vector_answers(*engine, vs), first);
    EXPECT_EQ(engine->indexes().counts().loaded, 1);
    // Links that point nowhere (same length, bytes overwritten) are refused before any search walks them.
    for (auto& f : std::filesystem::directory_iterator(dir.path() + "/rag-index"))
        if (f.path().extension() == ".hnsw") {
            std::fstream io(f.path(), std::ios::in | std::ios::out | std::ios::binary);
            io.seekp(std::streamoff(std::filesystem::file_size(f.path()) / 3));
            std::string junk(4096, '\xff');
            io.write(junk.data(), std::streamsize(junk.size()));
        }
    engine = make_engine(embedder, 30);
    EXPECT_EQ(vector_answers(*engine, vs), first);
    EXPECT_EQ(engine->indexes().counts().built, 1);
}

TEST_F(RagEngine, BrokenAndUnsupportedFilesFailSayingWhyAndNothingElseIsAffected) {
    std::string vs = store_with_docs();
    auto png = attach(vs, upload("photo.png", "\x89PNG....", "image/png"));
    EXPECT_EQ(png.status, "failed");
    EXPECT_EQ(png.error_code, "unsupported_file");
    EXPECT_NE(png.error_message.find("unsupported file type (image/png, .png)"), std::string::npos);
    auto pdf = attach(vs, upload("report.pdf", "%PDF-1.4 garbage", "application/pdf"));
    EXPECT_EQ(pdf.status, "failed");
    EXPECT_EQ(pdf.error_code, "invalid_file");
    EXPECT_EQ(pdf.error_message, "not a readable PDF (damaged or not a PDF)");
    auto empty = attach(vs, upload("empty.txt", "  \n\n ", "text/plain"));
    EXPECT_EQ(empty.error_message, "the file has no text to index");
    embedder->fail = true;
    auto down = attach(vs, upload("new.md", "# New\n\nsomething never seen\n"));
    EXPECT_EQ(down.status, "failed");
    EXPECT_EQ(down.error_message, "fake upstream down");
    embedder->fail = false;
    EXPECT_EQ(top(vs, "how do bees make honey"), "bees.md");
    auto s = *engine->db()->store(vs);
    EXPECT_EQ(s.counts.completed, 3);
    EXPECT_EQ(s.counts.failed, 4);
}

TEST_F(RagEngine, AnotherEmbeddingModelIsAClearErrorNotASilentMix) {
    std::string vs = store_with_docs();
    engine = make_engine(std::make_shared<FakeEmbedder>("other", 64));
    try {
        top(vs, "bees");
        FAIL() << "searched vectors of one model with a query of another";
    } catch (const RagError& e) {
        EXPECT_EQ(e.status(), 409);
        EXPECT_NE(std::string(e.what()).find("holds vectors of model \"fake\", but [rag] embedding_model is \"other\""),
                  std::string::npos);
    }
    EXPECT_EQ(top(vs, "bees", Ranker::text), "bees.md") << "BM25 needs no model";
    auto a = attach(vs, upload("more.md", "# More\n\nmore bees\n"));
    EXPECT_EQ(a.status, "failed");
    EXPECT_NE(a.error_message.find("holds vectors of model \"fake\""), std::string::npos);
}

TEST_F(RagEngine, AProcessKilledMidIngestLosesNothingCompletedAndItsFileIsResumed) {
    std::string vs = store_with_docs();
    std::string text;
    for (int i = 0; i < 6; ++i) text += "# Part " + std::to_string(i) + "\n\nwords of part " + std::to_string(i) + ".\n\n";
    std::string f = upload("long.md", text);
    engine->db()->attach(vs, f, "{}", {});
    engine.reset();   // the child opens its own
    pid_t child = fork();
    if (child == 0) {
        auto dying = std::make_shared<FakeEmbedder>();
        dying->kill_after_batches = 2;   // 2 batches of 2 chunks committed, then SIGKILL mid-ingest
        auto e = make_engine(dying);
        e->ingest_next();
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    engine = make_engine(embedder);
    EXPECT_EQ(engine->db()->attachment(vs, f)->status, "in_progress");
    EXPECT_EQ(top(vs, "how do bees make honey"), "bees.md") << "the completed files are intact";
    long before = embedder->embedded;
    auto o = engine->ingest_next();
    ASSERT_TRUE(o);
    EXPECT_EQ(o->status, "completed");
    EXPECT_EQ(o->reused, 4) << "the batches committed before the kill";
    EXPECT_EQ(embedder->embedded - before, 2);
    EXPECT_EQ(top(vs, "words of part 5"), "long.md");
}

TEST_F(RagEngine, TheBackgroundIngestTakesWhatIsAttached) {
    engine->start_background_ingest();
    std::string vs = engine->db()->create_store("bg", "english", "{}").id;
    std::string f = upload("bees.md", docs.at("bees.md"));
    engine->db()->attach(vs, f, "{}", {});
    engine->wake();
    std::string status;
    for (auto deadline = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < deadline;) {
        status = engine->db()->attachment(vs, f)->status;
        if (status != "in_progress") break;
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(status, "completed");
}

TEST_F(RagEngine, WithoutAnEmbeddingModelStoresAreSearchedByKeywords) {
    engine = make_engine(nullptr);
    std::string vs = store_with_docs();
    EXPECT_EQ(top(vs, "how do bees make honey"), "bees.md");
    EXPECT_EQ(engine->db()->store(vs)->embedding_model, "");
    EXPECT_THROW(top(vs, "bees", Ranker::vector), RagError);
}

TEST_F(RagEngine, TheCliIngestsFoldersSkipsWhatIsUnchangedAndReplacesWhatChanged) {
    namespace fs = std::filesystem;
    std::string root = dir.path() + "/docs";
    fs::create_directories(root + "/sub");
    fs::create_directories(root + "/.git");
    auto write = [](const std::string& p, const std::string& t) { std::ofstream(p) << t; };
    write(root + "/bees.md", docs.at("bees.md"));
    write(root + "/sub/tides.md", docs.at("tides.md"));
    write(root + "/.git/config", "[core]\n");
    write(root + "/photo.png", "\x89PNG");
    std::vector<std::string> seen;
    IngestSummary s = engine->ingest_paths("kb", {root}, [&](const std::string& p, std::size_t, std::size_t) { seen.push_back(p); });
    EXPECT_EQ(s.files, 2);
    EXPECT_EQ(s.failed, 1);
    EXPECT_EQ(s.chunks, 2);
    EXPECT_EQ(s.embedded, 2);
    ASSERT_EQ(s.failures.size(), 1u);
    EXPECT_NE(s.failures[0].find("photo.png: unsupported file type"), std::string::npos);
    EXPECT_EQ(seen.size(), 4u);   // three files and the end; .git skipped
    IngestSummary again = engine->ingest_paths("kb", {root});
    EXPECT_EQ(again.skipped, 2);
    EXPECT_EQ(again.embedded, 0);
    write(root + "/bees.md", docs.at("bees.md") + "\n# Wax\n\nBees make wax too.\n");
    IngestSummary changed = engine->ingest_paths("kb", {root});
    EXPECT_EQ(changed.files, 1);
    EXPECT_EQ(changed.embedded, 1) << "the Bees section was embedded already";
    SearchRequest q;
    q.query = "wax";
    auto page = engine->search_named("kb", q);
    ASSERT_FALSE(page.hits.empty());
    EXPECT_EQ(page.hits[0].filename, root + "/bees.md");
    EXPECT_EQ(page.hits[0].attributes["path"], root + "/bees.md");
    auto store = *engine->db()->store_named("kb");
    EXPECT_EQ(store.counts.completed, 2) << "the old bees.md was replaced, not kept beside the new";
    EXPECT_THROW(engine->ingest_paths("kb", {root + "/missing"}), RagError);
}

}  // namespace
}  // namespace agente::rag

namespace agente::rag {
namespace {

TEST_F(RagEngine, ADeletedStoresIndexLeavesMemoryHereAndInOtherProcesses) {
    std::string vs = store_with_docs();
    top(vs, "bees");
    EXPECT_GT(engine->index_memory_bytes(), 0u);
    EXPECT_TRUE(engine->delete_store(vs));
    EXPECT_EQ(engine->index_memory_bytes(), 0u);
    EXPECT_FALSE(engine->delete_store(vs));
    // Deleted by someone else (another dirty worker, the CLI): dropped by the next sweep.
    std::string other = store_with_docs();
    top(other, "bees");
    engine->db()->delete_store(other);
    EXPECT_GT(engine->index_memory_bytes(), 0u);
    engine->sweep_indexes();
    EXPECT_EQ(engine->index_memory_bytes(), 0u);
    EXPECT_THROW(top(other, "bees"), RagError);
}

}  // namespace
}  // namespace agente::rag
