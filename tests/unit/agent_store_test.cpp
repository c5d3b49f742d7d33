// The context store on a temporary database: history in order, the per-context cap, LRU eviction
// across connections (as two workers would use it), tasks and cross-worker cancel requests, and the
// store thread's hand-back to an io_context.
#include "app/agent/store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>

namespace agente::agent {
namespace {

class AgentStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/agent-store-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        path_ = dir_ + "/db.sqlite3";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string dir_, path_;
};

std::vector<ChatMessage> turn(const std::string& text) { return {{"user", text}, {"assistant", "re: " + text}}; }

TEST_F(AgentStoreTest, KeepsHistoryInOrderAndCapsEachContext) {
    ContextStore store(path_, {10, 4, 100, std::chrono::milliseconds(1000)});
    EXPECT_TRUE(store.history("a").empty());
    store.append("a", turn("one"));
    store.append("a", turn("two"));
    store.append("a", turn("three"));
    auto h = store.history("a");
    ASSERT_EQ(h.size(), 4u);   // the oldest turn dropped
    EXPECT_EQ(h[0].content, "two");
    EXPECT_EQ(h[3].content, "re: three");
    EXPECT_EQ(store.message_count("a"), 4);
}

// A count alone let 50 messages of 15 MB each into one context: bytes are bounded too, oldest first,
// the new messages themselves when they alone are more.
TEST_F(AgentStoreTest, CapsEachContextInBytes) {
    StoreLimits limits{10, 50, 100, std::chrono::milliseconds(1000), 1000};
    ContextStore store(path_, limits);
    std::string big(300, 'x');
    for (int i = 0; i < 5; ++i) store.append("a", {{"user", big}, {"assistant", "ok"}});
    EXPECT_LE(store.context_bytes("a"), 1000);
    auto h = store.history("a");
    ASSERT_EQ(h.size(), 7u);   // three turns of 300 + 4 + 2 + 9 bytes, and the reply before them
    EXPECT_EQ(h.back().content, "ok");
    EXPECT_EQ(store.context_bytes("a"), 3 * 315 + 11);
    store.append("a", {{"user", std::string(40, 'x')}});
    EXPECT_EQ(store.context_bytes("a"), 1000);   // at the bound: kept
    store.append("a", {{"user", "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}});
    // UTF-8 bytes (24 + 4), not characters: the two oldest messages (11 and 304 bytes) made room.
    EXPECT_EQ(store.context_bytes("a"), 1000 + 28 - 11 - 304);
    store.append("a", {{"user", std::string(5000, 'y')}, {"assistant", "ok"}});
    h = store.history("a");
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0].content, "ok");
    store.append("b", {{"user", std::string(2000, 'z')}});
    EXPECT_EQ(store.context_bytes("b"), 0);
    EXPECT_TRUE(store.history("b").empty());
}

TEST_F(AgentStoreTest, EvictsTheLeastRecentlyUsedAcrossConnections) {
    StoreLimits limits{3, 10, 100, std::chrono::milliseconds(1000)};
    ContextStore w1(path_, limits), w2(path_, limits);   // two workers, one file
    w1.append("a", turn("a"));
    w2.append("b", turn("b"));
    w1.append("c", turn("c"));
    EXPECT_EQ(w2.history("a").size(), 2u);               // reading "a" makes it the most recent
    w2.append("d", turn("d"));                           // one too many: "b" is the least recent
    EXPECT_EQ(w1.context_count(), 3);
    EXPECT_TRUE(w1.history("b").empty());
    EXPECT_EQ(w1.history("a").size(), 2u);
    EXPECT_EQ(w1.message_count("b"), 0);
    for (int i = 0; i < 50; ++i) w1.append("x" + std::to_string(i), turn("x"));
    EXPECT_EQ(w2.context_count(), 3);
}

TEST_F(AgentStoreTest, SurvivesReopening) {
    {
        ContextStore s(path_, {});
        s.append("ctx", turn("remember me"));
    }
    ContextStore again(path_, {});
    auto h = again.history("ctx");
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h[0].content, "remember me");
}

TEST_F(AgentStoreTest, ADatabaseMadeBeforeCitationsGetsTheColumn) {
    sqlite3* old = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &old), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(old,
                           "CREATE TABLE tasks (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
                           "context_id TEXT NOT NULL, state TEXT NOT NULL, reply TEXT NOT NULL, updated TEXT NOT NULL, "
                           "cancel_requested INTEGER NOT NULL DEFAULT 0);"
                           "INSERT INTO tasks(id, context_id, state, reply, updated) VALUES('t0', 'c', 'completed', 'r', 'ts')",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(old);
    ContextStore a(path_, {}), b(path_, {});   // the second finds the column the first added
    EXPECT_EQ(a.get_task("t0")->citations, "");   // a task stored before has none
    b.put_task({"t1", "c", "completed", "r", "ts", false, "[]"});
    EXPECT_EQ(a.get_task("t1")->citations, "[]");
}

TEST_F(AgentStoreTest, TasksAndCancelRequests) {
    ContextStore a(path_, {10, 10, 3, std::chrono::milliseconds(1000)}), b(path_, {10, 10, 3, std::chrono::milliseconds(1000)});
    a.put_task({"t1", "c", "working", "", "ts", false, ""});
    EXPECT_TRUE(b.request_cancel("t1"));
    EXPECT_EQ(a.cancel_requests({"t1", "t2"}), std::vector<std::string>{"t1"});
    a.put_task({"t1", "c", "canceled", "", "ts2", false, R"([{"index":1}])"});
    EXPECT_FALSE(b.request_cancel("t1"));   // finished tasks are not cancelable
    EXPECT_FALSE(b.request_cancel("nope"));
    auto t = b.get_task("t1");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->state, "canceled");
    EXPECT_EQ(t->citations, R"([{"index":1}])");   // kept for GetTask
    for (int i = 0; i < 10; ++i) a.put_task({"n" + std::to_string(i), "c", "completed", "r", "ts", false, ""});
    EXPECT_EQ(a.task_count(), 3);           // max_tasks: the oldest go
    EXPECT_FALSE(a.get_task("t1"));
    EXPECT_TRUE(a.get_task("n9"));
}

TEST_F(AgentStoreTest, ThreadHandsResultsBackToTheLoop) {
    asio::io_context io;
    StoreThread thread(path_, {});
    std::vector<ChatMessage> seen;
    bool failed = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        std::function<bool(ConversationStore&)> write = [](ConversationStore& s) { s.append("ctx", turn("hi")); return true; };
        co_await thread.call(std::move(write));
        std::function<std::vector<ChatMessage>(ConversationStore&)> read = [](ConversationStore& s) { return s.history("ctx"); };
        seen = co_await thread.call(std::move(read));
        std::function<bool(ConversationStore&)> boom = [](ConversationStore&) -> bool { throw std::runtime_error("boom"); };
        try {
            co_await thread.call(std::move(boom));
        } catch (const std::runtime_error&) {
            failed = true;
        }
    }, asio::detached);
    io.run();
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[1].content, "re: hi");
    EXPECT_TRUE(failed);
}

// Workers of a fresh server open one new database at once; switching it to WAL can then fail with
// "database is locked" without the busy timeout applying. Every worker's store must still open.
TEST_F(AgentStoreTest, WorkersOpeningOneNewDatabaseAtOnceAllGetIt) {
    for (int round = 0; round < 10; ++round) {
        std::string path = dir_ + "/fresh-" + std::to_string(round) + ".sqlite3";
        asio::io_context io;
        std::vector<std::unique_ptr<StoreThread>> workers;
        for (int i = 0; i < 8; ++i) workers.push_back(std::make_unique<StoreThread>(path, StoreLimits{}));
        int ok = 0;
        std::vector<std::string> errors;
        for (int i = 0; i < 8; ++i)
            asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
                std::function<bool(ConversationStore&)> job = [i](ConversationStore& s) {
                    s.append("c" + std::to_string(i), turn("hi"));
                    return true;
                };
                try {
                    co_await workers[i]->call(std::move(job));
                    ++ok;
                } catch (const std::exception& e) {
                    errors.push_back(e.what());
                }
            }, asio::detached);
        io.run();
        ASSERT_EQ(ok, 8) << (errors.empty() ? "" : errors.front());
    }
}

TEST_F(AgentStoreTest, UnopenableDatabaseFailsEachCall) {
    asio::io_context io;
    StoreThread thread("/proc/no-such-dir/db.sqlite3", {});
    std::string error;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        std::function<bool(ConversationStore&)> job = [](ConversationStore&) { return true; };
        try {
            co_await thread.call(std::move(job));
        } catch (const std::runtime_error& e) {
            error = e.what();
        }
    }, asio::detached);
    io.run();
    EXPECT_NE(error.find("context store unavailable"), std::string::npos) << error;
}

}  // namespace
}  // namespace agente::agent
