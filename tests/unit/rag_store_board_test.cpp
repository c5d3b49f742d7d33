// The stores board of /status: what a dirty worker publishes is what a reader gets, whole; a writer
// that died mid-way does not lock it.
#include "app/rag/store_board.hpp"

#include <gtest/gtest.h>

#include <memory>

#include <sys/wait.h>
#include <unistd.h>

using namespace agente::rag;

namespace {

std::unique_ptr<StoreBoard> fresh() { return std::make_unique<StoreBoard>(); }

StoreSummary store(std::string name, long files) {
    StoreSummary s;
    s.name = std::move(name);
    s.id = "vs_" + std::to_string(files);
    s.files = files;
    s.completed = files - 1;
    s.in_progress = 1;
    s.bytes = 1000 * files;
    s.chunks = 7 * files;
    return s;
}

}  // namespace

TEST(StoreBoard, NothingPublishedYetIsSaidSo) {
    auto b = fresh();
    auto v = read_board(*b);
    ASSERT_TRUE(v);
    EXPECT_FALSE(v->published);
    EXPECT_TRUE(v->stores.empty());
}

TEST(StoreBoard, ReadsWhatWasPublished) {
    auto b = fresh();
    ASSERT_TRUE(publish(*b, {store("manuals", 3), store("faq", 2)}, false));
    auto v = read_board(*b);
    ASSERT_TRUE(v);
    EXPECT_TRUE(v->published);
    ASSERT_EQ(v->stores.size(), 2u);
    EXPECT_EQ(v->stores[0].name, "manuals");
    EXPECT_EQ(v->stores[0].id, "vs_3");
    EXPECT_EQ(v->stores[0].files, 3);
    EXPECT_EQ(v->stores[0].in_progress, 1);
    EXPECT_EQ(v->stores[0].completed, 2);
    EXPECT_EQ(v->stores[0].bytes, 3000);
    EXPECT_EQ(v->stores[0].chunks, 21);
    EXPECT_EQ(v->stores[1].name, "faq");
    EXPECT_FALSE(v->more);
    ASSERT_TRUE(publish(*b, {store("faq", 2)}, false));   // a store deleted: fewer rows
    EXPECT_EQ(read_board(*b)->stores.size(), 1u);
}

TEST(StoreBoard, LongNamesAreCutAndRowsBounded) {
    auto b = fresh();
    std::vector<StoreSummary> many;
    for (int i = 0; i < board_rows + 5; ++i) many.push_back(store(std::string(100, 'x'), i + 1));
    ASSERT_TRUE(publish(*b, many, false));
    auto v = read_board(*b);
    ASSERT_EQ(v->stores.size(), std::size_t(board_rows));
    EXPECT_TRUE(v->more);
    EXPECT_EQ(v->stores[0].name, std::string(63, 'x'));
}

TEST(StoreBoard, ALiveWriterIsWaitedForADeadOneTakenOver) {
    auto b = fresh();
    b->writer = std::int32_t(::getppid());   // alive, and not us: it is writing now
    EXPECT_FALSE(publish(*b, {store("a", 1)}, false));
    pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ::waitpid(child, nullptr, 0);
    b->writer = std::int32_t(child);         // died holding it, the version left odd
    b->version = 7;
    EXPECT_FALSE(read_board(*b));            // a reader sees it being written
    EXPECT_TRUE(publish(*b, {store("a", 1)}, false));
    auto v = read_board(*b);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->stores.size(), 1u);
    EXPECT_EQ(b->writer.load(), 0);
}
