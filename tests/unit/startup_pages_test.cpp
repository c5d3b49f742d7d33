// Which of a worker's mappings drop_startup_pages may unmap once the worker is ready: only those a
// later touch maps again from the page cache with nothing lost.
#include "core/startup_pages.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace agente::core;

namespace {

// One /proc/PID/smaps entry, with the fields that matter here (the kernel prints about 25).
std::string entry(const std::string& header, int anonymous_kb = 0) {
    return header + "\nSize:                 16 kB\nRss:                  12 kB\nAnonymous:      " +
           std::to_string(anonymous_kb) + " kB\nAnonHugePages:         0 kB\nVmFlags: rd mr mw me\n";
}

}  // namespace

TEST(StartupPages, DropsTheBinarysCodeAndReadOnlyDataAndTheLibrariesCode) {
    std::string smaps = entry("55d0c8a00000-55d0c8a2a000 r--p 00000000 08:01 1234    /usr/bin/agente-hibrido") +
                        entry("55d0c8a2a000-55d0c8e0a000 r-xp 0002a000 08:01 1234    /usr/bin/agente-hibrido") +
                        entry("7f0000200000-7f0000400000 r-xp 00030000 08:01 99      /lib/x86_64-linux-gnu/libcrypto.so.3");
    EXPECT_EQ(droppable_mappings(smaps), (std::vector<PageRange>{{0x55d0c8a00000, 0x55d0c8a2a000},
                                                                 {0x55d0c8a2a000, 0x55d0c8e0a000},
                                                                 {0x7f0000200000, 0x7f0000400000}}));
}

TEST(StartupPages, KeepsReadOnlyMappingsThatHoldCopyOnWritePages) {
    // Relocated data the loader made read-only afterwards (RELRO), or code under a debugger's
    // breakpoint: dropping them would lose the writes.
    std::string smaps = entry("55d0c8ec9000-55d0c8ed7000 r--p 004c8000 08:01 1234    /usr/bin/agente-hibrido", 52) +
                        entry("7f0000500000-7f0000560000 r--p 00300000 08:01 99      /lib/x86_64-linux-gnu/libcrypto.so.3", 392);
    EXPECT_TRUE(droppable_mappings(smaps).empty());
}

TEST(StartupPages, KeepsWritableAnonymousSharedAndSpecialMappings) {
    std::string smaps = entry("55d0c8ed7000-55d0c8edd000 rw-p 004d6000 08:01 1234    /usr/bin/agente-hibrido", 16) +
                        entry("55d0c9000000-55d0c906b000 rw-p 00000000 00:00 0       [heap]", 332) +
                        entry("7f0000600000-7f0000606000 rw-p 00000000 00:00 0 ", 24) +
                        entry("7f0000700000-7f0001fa4000 rw-s 00000000 00:01 46269   /memfd:agente-hibrido-scoreboard (deleted)") +
                        entry("7f0000800000-7f0000802000 r--p 00000000 00:00 0       [vvar]") +
                        entry("7f0000802000-7f0000804000 r-xp 00000000 00:00 0       [vdso]") +
                        entry("7ffc5a8ca000-7ffc5a8eb000 rw-p 00000000 00:00 0       [stack]", 24);
    EXPECT_TRUE(droppable_mappings(smaps).empty());
}

TEST(StartupPages, FindsAReplacedBinaryAndPathsWithSpaces) {
    // A rebuild replaced the file under a running worker: its pages are still the mapping's own.
    std::string smaps = entry("55d0c8a2a000-55d0c8e0a000 r-xp 0002a000 08:01 1234    /opt/my app/agente-hibrido (deleted)");
    EXPECT_EQ(droppable_mappings(smaps), (std::vector<PageRange>{{0x55d0c8a2a000, 0x55d0c8e0a000}}));
}

TEST(StartupPages, ReadsNothingFromAnEmptyOrCutText) {
    EXPECT_TRUE(droppable_mappings("").empty());
    // Cut before its Anonymous: line: not known to be clean, so kept.
    EXPECT_TRUE(droppable_mappings("55d0c8a2a000-55d0c8e0a000 r-xp 0002a000 08:01 1234    /usr/bin/agente-hibrido\n"
                                   "Size:                 16 kB\n").empty());
}

TEST(StartupPages, DropsInThisProcessWithoutLosingItsCode) {
    // The test binary's own code and libraries, dropped under its feet: it runs on.
    EXPECT_GT(drop_startup_pages(), 0u);
    EXPECT_EQ(droppable_mappings(entry("1000-2000 r-xp 00000000 08:01 1 /bin/x")).size(), 1u);
}
