// Shared memory as named, typed regions (agente/shared.hpp): the layout, what a worker's attach
// checks, what the master does with a dead worker's cells, and the scoreboard's slots on top.
#include "core/scoreboard.hpp"
#include "core/shared_memory.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <thread>

using namespace agente;
using namespace agente::core;

namespace {

struct Flags {
    std::atomic<std::uint32_t> bits;
    char label[13];                           // an odd size: the next region still starts aligned
};

struct Counters {
    static constexpr bool counters_only = true;
    std::atomic<std::uint64_t> served;
    std::atomic<std::uint64_t> buckets[3];
};

struct Held {
    std::atomic<std::int32_t> streams;
};

struct Regions {
    Shared<Flags> flags;
    PerWorker<Counters> counters;
    PerWorker<Held> held;

    explicit Regions(SharedLayout& layout)
        : flags(layout.declare<Flags>("test.flags")),
          counters(layout.declare_per_worker<Counters>("test.counters", OnExit::fold)),
          held(layout.declare_per_worker<Held>("test.held")) {}
};

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

}  // namespace

TEST(SharedLayout, EveryCellStartsOnItsOwnCacheLine) {
    SharedLayout layout(8);
    Regions r(layout);
    SharedMemory m = SharedMemory::create(layout);
    EXPECT_EQ(address(r.flags.get()) % 64, 0u);
    for (int slot = 0; slot <= 8; ++slot) {   // the retired cell after the 8 slots
        EXPECT_EQ(address(&r.counters.of(slot)) % 64, 0u);
        EXPECT_EQ(address(&r.held.of(slot)) % 64, 0u);
    }
    EXPECT_EQ(address(&r.counters.of(1)) - address(&r.counters.of(0)), 64u);   // 32 bytes, padded to a line
    EXPECT_EQ(r.counters.slots(), 8);
    EXPECT_GE(address(&r.counters.of(0)), address(r.flags.get()) + 64);      // regions do not overlap
    EXPECT_GE(address(&r.held.of(0)), address(&r.counters.retired()) + 64);
}

TEST(SharedLayout, AWorkerFindsTheMastersRegionsByNameWhateverItsDeclarationOrder) {
    SharedLayout master_layout(4);
    Regions master(master_layout);
    SharedMemory m = SharedMemory::create(master_layout);
    master.flags->bits = 42;
    master.counters.of(2).served = 7;

    SharedLayout worker_layout(4);   // what an exec'd worker does: declare again, then attach
    auto held = worker_layout.declare_per_worker<Held>("test.held");
    auto counters = worker_layout.declare_per_worker<Counters>("test.counters", OnExit::fold);
    auto flags = worker_layout.declare<Flags>("test.flags");
    SharedMemory w = SharedMemory::attach(::dup(m.fd()), worker_layout);
    EXPECT_EQ(flags->bits.load(), 42u);
    EXPECT_EQ(counters.of(2).served.load(), 7u);
    held.of(3).streams = 5;
    EXPECT_EQ(master.held.of(3).streams.load(), 5);
}

TEST(SharedLayout, AWorkerWhoseLayoutDiffersRefusesToBoot) {
    SharedLayout master_layout(4);
    Regions master(master_layout);
    SharedMemory m = SharedMemory::create(master_layout);

    SharedLayout bigger(4);   // a new binary, reloaded under the old master
    bigger.declare<Counters>("test.flags");
    EXPECT_THROW(SharedMemory::attach(::dup(m.fd()), bigger), std::runtime_error);

    SharedLayout unknown(4);
    unknown.declare<Flags>("test.new_region");
    try {
        SharedMemory::attach(::dup(m.fd()), unknown);
        FAIL() << "attached a region the master does not have";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("\"test.new_region\" is missing"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("USR2"), std::string::npos) << e.what();
    }

    SharedLayout per_server(4);   // the same name, once per worker instead of once
    per_server.declare_per_worker<Flags>("test.flags");
    EXPECT_THROW(SharedMemory::attach(::dup(m.fd()), per_server), std::runtime_error);
}

TEST(SharedLayout, NamesAreCheckedWhenDeclared) {
    SharedLayout layout(4);
    layout.declare<Flags>("a");
    EXPECT_THROW(layout.declare<Flags>("a"), std::logic_error);
    EXPECT_THROW(layout.declare<Flags>(""), std::logic_error);
    EXPECT_THROW(layout.declare<Flags>(std::string(64, 'x')), std::logic_error);
    EXPECT_THROW(layout.declare_per_worker<Held>("b", OnExit::fold), std::logic_error);   // not a CounterBlock
}

TEST(SharedLayout, HandlesRefuseUseBeforeTheMemoryIsMapped) {
    SharedLayout layout(4);
    Regions r(layout);
    EXPECT_FALSE(r.flags.mapped());
    EXPECT_THROW(r.flags.get(), std::logic_error);
    EXPECT_FALSE(Shared<Flags>().mapped());   // never declared (--check-config)
}

TEST(SharedMemory, ADeadWorkersCellsAreZeroedAndItsCountersKept) {
    SharedLayout layout(4);
    Regions r(layout);
    SharedMemory m = SharedMemory::create(layout);
    for (int slot : {0, 1}) m.occupy(slot);
    bump(r.counters.of(0).served, 3);
    bump(r.counters.of(1).served, 5);
    bump(r.counters.of(1).buckets[2], 2);
    r.held.of(1).streams = 4;
    EXPECT_EQ(r.counters.total()->served.load(), 8u);

    m.retire_slot(1);
    EXPECT_FALSE(m.occupied(1));
    EXPECT_EQ(r.held.of(1).streams.load(), 0);                  // OnExit::zero: gone with its worker
    EXPECT_EQ(r.counters.of(1).served.load(), 0u);              // the slot starts afresh...
    EXPECT_EQ(r.counters.retired().served.load(), 5u);          // ...and what it counted is kept
    auto total = r.counters.total();
    EXPECT_EQ(total->served.load(), 8u);                         // the total never went backwards
    EXPECT_EQ(total->buckets[2].load(), 2u);
    EXPECT_EQ(r.flags->bits.load(), 0u);                         // whole-server cells are not the slot's

    m.occupy(1);   // a new worker in the old slot counts from zero
    bump(r.counters.of(1).served);
    EXPECT_EQ(r.counters.total()->served.load(), 9u);
}

TEST(SharedMemory, TotalsSkipFreeSlots) {
    SharedLayout layout(4);
    Regions r(layout);
    SharedMemory m = SharedMemory::create(layout);
    m.occupy(0);
    r.counters.of(0).served = 1;
    r.counters.of(3).served = 100;   // never occupied: not a worker's (and its pages stay untouched)
    EXPECT_EQ(r.counters.total()->served.load(), 1u);
}

// A reader summing while the master folds never sees a total go down nor count a slot twice.
TEST(SharedMemory, TotalsStayMonotonicWhileTheMasterFolds) {
    SharedLayout layout(16);
    Regions r(layout);
    SharedMemory m = SharedMemory::create(layout);
    for (int slot = 0; slot < 16; ++slot) {
        m.occupy(slot);
        r.counters.of(slot).served = 1000;
    }
    std::atomic<bool> done{false};
    std::uint64_t lowest = ~0ULL, highest = 0, previous = 0;
    bool monotonic = true;
    std::thread reader([&] {
        while (!done) {
            std::uint64_t t = r.counters.total()->served.load();
            monotonic = monotonic && t >= previous;
            previous = t;
            lowest = std::min(lowest, t);
            highest = std::max(highest, t);
        }
    });
    for (int round = 0; round < 2000; ++round) {
        int slot = round % 16;
        m.retire_slot(slot);
        m.occupy(slot);
        r.counters.of(slot).served = 1;   // the next worker of the slot serves one request
    }
    done = true;
    reader.join();
    EXPECT_TRUE(monotonic);
    EXPECT_GE(lowest, 16000u);
    EXPECT_EQ(r.counters.total()->served.load(), 16000u + 2000u);
}

TEST(SharedMemory, APerWorkerCellMustConstructAsZeros) {
    struct Defaulted {
        std::atomic<std::uint32_t> value{7};
    };
    SharedLayout layout(2);
    layout.declare_per_worker<Defaulted>("test.defaulted");
    EXPECT_THROW(SharedMemory::create(layout), std::logic_error);
}

TEST(NameTable, InternsOnceFindsAndRunsOut) {
    auto t = std::make_unique<NameTable<3, 7>>();
    EXPECT_EQ(t->intern("/health"), 0);
    EXPECT_EQ(t->intern("/v1/models"), 1);      // cut to 7 bytes
    EXPECT_EQ(t->name(1), "/v1/mod");
    EXPECT_EQ(t->intern("/health"), 0);
    EXPECT_EQ(t->find("/nope"), -1);
    EXPECT_EQ(t->intern("/c"), 2);
    EXPECT_EQ(t->intern("/d"), -1);             // full: the caller counts it under an overflow label
    EXPECT_EQ(t->name(7), "");
}

TEST(NameTable, AnEntryLeftHalfWrittenIsNeverShown) {
    auto t = std::make_unique<NameTable<3, 7>>();
    t->entries[0].state = NameTable<3, 7>::writing;   // a worker died while writing it
    EXPECT_EQ(t->name(0), "");
    EXPECT_EQ(t->intern("/a"), 1);
}

TEST(Scoreboard, SlotsAreClaimedReleasedAndSharedThroughTheFd) {
    SharedLayout master_layout;
    Scoreboard master(master_layout);
    master.create();
    int a = master.claim(100, 1), b = master.claim(101, 2);
    EXPECT_EQ(a, 0);
    EXPECT_EQ(b, 1);
    EXPECT_EQ(master.slot(b).generation.load(), 2u);
    SharedLayout worker_layout;
    Scoreboard worker(worker_layout);
    worker.attach(::dup(master.fd()));   // what an exec'd worker does
    worker.slot(b).requests = 7;
    worker.slot(b).state = std::uint32_t(WorkerState::ready);
    EXPECT_EQ(master.slot(b).requests.load(), 7u);
    EXPECT_EQ(master.slot(b).state.load(), std::uint32_t(WorkerState::ready));
    master.slot(a).requests = 3;
    master.release(a);
    EXPECT_EQ(master.slot(a).state.load(), std::uint32_t(WorkerState::free));
    EXPECT_EQ(master.claim(102, 3), 0);   // a released slot is reused, its counters reset
    EXPECT_EQ(master.slot(0).requests.load(), 0u);
    EXPECT_EQ(master.slot(0).pid.load(), 102);
}

TEST(Scoreboard, AConnectionIsLeftToALiveReadySiblingWithTwoFewer) {
    SharedLayout layout;
    Scoreboard s(layout);
    s.create();
    int me = s.claim(100), sibling = s.claim(101), draining = s.claim(102);
    for (int i : {me, sibling, draining}) s.slot(i).state = std::uint32_t(WorkerState::ready);
    s.slot(draining).state = std::uint32_t(WorkerState::draining);
    s.slot(sibling).heartbeat_ns = 1000;
    s.slot(sibling).connections = 3;
    EXPECT_FALSE(s.fewer_elsewhere(me, 8, 500));  // within a factor of two: not worth the wait
    EXPECT_TRUE(s.fewer_elsewhere(me, 9, 500));
    EXPECT_FALSE(s.fewer_elsewhere(me, 9, 2000));  // not heard from lately: maybe stuck
    s.slot(sibling).state = std::uint32_t(WorkerState::booting);
    EXPECT_FALSE(s.fewer_elsewhere(me, 50, 0));  // not serving yet; a draining one and my own never count
}

TEST(Scoreboard, AFullWorkerLeavesAConnectionToALiveReadySiblingWithRoom) {
    SharedLayout layout;
    Scoreboard s(layout);
    s.create();
    int me = s.claim(100), sibling = s.claim(101), draining = s.claim(102);
    for (int i : {me, sibling}) s.slot(i).state = std::uint32_t(WorkerState::ready);
    s.slot(draining).state = std::uint32_t(WorkerState::draining);  // a draining one never counts
    s.slot(sibling).heartbeat_ns = 1000;
    s.slot(sibling).connections = 9;
    EXPECT_TRUE(s.room_elsewhere(me, 10, 500));    // one place left there
    EXPECT_FALSE(s.room_elsewhere(me, 9, 500));    // full too
    EXPECT_FALSE(s.room_elsewhere(me, 10, 2000));  // not heard from lately: maybe stuck
    s.slot(sibling).state = std::uint32_t(WorkerState::booting);
    EXPECT_FALSE(s.room_elsewhere(me, 10, 0));     // not serving yet
}

TEST(Scoreboard, RunsOutOfSlotsCleanly) {
    SharedLayout layout;
    Scoreboard s(layout);
    s.create();
    for (int i = 0; i < Scoreboard::max_slots; ++i) ASSERT_GE(s.claim(i + 1), 0);
    EXPECT_EQ(s.claim(999), -1);
}

TEST(Scoreboard, EachPoolHasItsOwnSlotsAndAReadyDirtySiblingNeverDefersAnAccept) {
    SharedLayout layout;
    Scoreboard s(layout);
    s.create();
    for (int i = 0; i < Scoreboard::max_slots; ++i) ASSERT_GE(s.claim(i + 1), 0);
    EXPECT_EQ(s.claim(999), -1);                           // HTTP slots full...
    int dirty = s.claim_dirty(1000);
    EXPECT_EQ(dirty, Scoreboard::first_dirty_slot);      // ...the dirty pool's are its own
    for (int i = 1; i < Scoreboard::dirty_slots; ++i) ASSERT_GE(s.claim_dirty(1000 + i), 0);
    EXPECT_EQ(s.claim_dirty(2000), -1);
    s.slot(dirty).state = std::uint32_t(WorkerState::ready);
    s.slot(dirty).heartbeat_ns = 1000;
    s.slot(0).state = std::uint32_t(WorkerState::ready);
    EXPECT_FALSE(s.fewer_elsewhere(0, 50, 0));            // a dirty worker holds no connections to take
}

TEST(Scoreboard, DirtyReadinessAndIdempotentKindsAreReadFromTheDirtySlots) {
    SharedLayout master_layout, http_layout;
    Scoreboard master(master_layout), http(http_layout);
    master.create();
    http.attach(::dup(master.fd()));
    EXPECT_FALSE(http.any_dirty_ready());
    int a = master.claim_dirty(10), b = master.claim_dirty(11);
    EXPECT_FALSE(http.any_dirty_ready());                 // booting
    master.slot(b).state = std::uint32_t(WorkerState::ready);
    EXPECT_TRUE(http.any_dirty_ready());
    master.slot(b).state = std::uint32_t(WorkerState::draining);
    EXPECT_FALSE(http.any_dirty_ready());                 // taking no more calls
    master.list_idempotent(a, {kind_hash("rag.search"), kind_hash("agent.store.history")});
    EXPECT_TRUE(http.idempotent(kind_hash("rag.search")));
    EXPECT_FALSE(http.idempotent(kind_hash("agent.store.append")));
    master.release(a);
    EXPECT_FALSE(http.idempotent(kind_hash("rag.search")));   // a dead worker's list no longer counts
    EXPECT_EQ(master.claim_dirty(12), a);
    EXPECT_FALSE(http.idempotent(kind_hash("rag.search")));   // nor does it leak into its slot's next worker
    EXPECT_NE(kind_hash(""), 0u);
}
