// The machine's view of its workers' Redis links in shared memory (cluster/link_board.hpp).
#include "app/cluster/link_board.hpp"

#include <gtest/gtest.h>

#include <string>

namespace agente::cluster {
namespace {

struct Board {
    SharedLayout layout{4};
    LinkRegions regions = declare_link_regions(layout);
    PrivateMemory memory{layout};
};

TEST(LinkBoard, OnlyLinkedWorkersCount) {
    Board b;
    EXPECT_TRUE(worker_links(b.regions.cells).empty());
    LinkCell& one = b.regions.cells.of(1);
    one.state.store(std::int32_t(RedisState::up));
    one.hosts.store(3);
    EXPECT_TRUE(worker_links(b.regions.cells).empty());   // not linked yet
    one.linked.store(1);
    auto links = worker_links(b.regions.cells);
    ASSERT_EQ(links.size(), 1u);
    EXPECT_EQ(links[0].state, RedisState::up);
    EXPECT_EQ(links[0].hosts, 3);
}

TEST(LinkBoard, TheReasonOfADownWorkerIsReadByAnyOther) {
    Board b;
    LinkCell& up = b.regions.cells.of(0);
    LinkCell& down = b.regions.cells.of(2);
    up.linked.store(1);
    up.state.store(std::int32_t(RedisState::up));
    down.linked.store(1);
    down.state.store(std::int32_t(RedisState::down));
    EXPECT_EQ(down_reason(b.regions.cells), "");
    write_reason(down, "Connection refused");
    EXPECT_EQ(down_reason(b.regions.cells), "Connection refused");
    write_reason(down, "no reply within 500 ms");   // a shorter or longer one replaces it whole
    EXPECT_EQ(read_reason(down), "no reply within 500 ms");
    write_reason(down, std::string(500, 'x'));        // cut to the cell
    EXPECT_EQ(read_reason(down).size(), sizeof down.reason - 1);
}

TEST(LinkBoard, AReasonHalfWrittenIsNone) {
    Board b;
    LinkCell& c = b.regions.cells.of(0);
    write_reason(c, "Connection refused");
    c.reason_seq.fetch_add(1);   // a worker that died while writing
    EXPECT_EQ(read_reason(c), "");
}

}  // namespace
}  // namespace agente::cluster
