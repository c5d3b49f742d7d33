// --reload's decisions over made-up inotify events and instants: no inotify, no clock.
#include "core/reload_plan.hpp"

#include <gtest/gtest.h>
#include <sys/inotify.h>

using namespace agente;
using namespace agente::core;
using namespace std::chrono_literals;

namespace {

const Clock::time_point t0{};
const WatchedFile conf = watched_file("server.conf", "/srv");
const WatchedFile binary = watched_file("/srv/build/agente-hibrido", "/srv", true);
const WatchedFile prompt = watched_file("prompts/system.md", "/srv");

std::vector<std::string> paths(const ReloadCause& cause) {
    std::vector<std::string> out;
    for (const auto& f : cause.files) out.push_back(f.path);
    return out;
}

}  // namespace

TEST(ReloadWatchList, IsEmptyWhenReloadIsOff) {
    Config c;
    c.config_path = "server.conf";
    c.reload_extra_files = {"a.md"};
    EXPECT_TRUE(reload_watch_list(c, "/usr/bin/agente-hibrido", "/srv").empty());
}

TEST(ReloadWatchList, NamesTheBinaryTheConfigAndTheExtraFilesEachOnceByTheirDirectories) {
    Config c;
    c.reload = true;
    c.config_path = "etc/server.conf";
    c.reload_extra_files = {"prompts/system.md", "/srv/etc/server.conf", "./prompts/../prompts/system.md"};
    auto files = reload_watch_list(c, "/srv/build/agente-hibrido", "/srv");
    ASSERT_EQ(files.size(), 3u);
    EXPECT_EQ(files[0], (WatchedFile{"/srv/build/agente-hibrido", "/srv/build", "agente-hibrido", true}));
    EXPECT_EQ(files[1], (WatchedFile{"etc/server.conf", "/srv/etc", "server.conf", false}));
    EXPECT_EQ(files[2], (WatchedFile{"prompts/system.md", "/srv/prompts", "system.md", false}));
}

TEST(ReloadWatchList, WithoutAConfigFileWatchesTheBinary) {
    Config c;
    c.reload = true;
    auto files = reload_watch_list(c, "/srv/build/agente-hibrido", "/srv");
    ASSERT_EQ(files.size(), 1u);
    EXPECT_TRUE(files[0].binary);
}

TEST(ReloadEvents, WhatEachInotifyEventMeans) {
    EXPECT_EQ(classify_event(IN_CLOSE_WRITE), Change::written);
    EXPECT_EQ(classify_event(IN_MOVED_TO), Change::written);    // an atomic save renamed into place
    EXPECT_EQ(classify_event(IN_ATTRIB), Change::written);      // touch, chmod +x after a link
    EXPECT_EQ(classify_event(IN_CREATE), Change::writing);
    EXPECT_EQ(classify_event(IN_MODIFY), Change::writing);
    EXPECT_EQ(classify_event(IN_DELETE), Change::removed);
    EXPECT_EQ(classify_event(IN_MOVED_FROM), Change::removed);  // vim's backup rename, the first step
    EXPECT_EQ(classify_event(IN_Q_OVERFLOW), Change::overflow);
    EXPECT_EQ(classify_event(IN_OPEN), Change::none);
}

TEST(ReloadEvents, OnlyTheWatchedNamesInTheWatchedDirectoriesCount) {
    std::vector<WatchedFile> files = {conf, binary};
    EXPECT_EQ(find_watched(files, "/srv", "server.conf"), &files[0]);
    EXPECT_EQ(find_watched(files, "/srv/build", "agente-hibrido"), &files[1]);
    EXPECT_EQ(find_watched(files, "/srv", ".server.conf.swp"), nullptr);  // an editor's swap file
    EXPECT_EQ(find_watched(files, "/srv", "server.conf~"), nullptr);      // its backup
    EXPECT_EQ(find_watched(files, "/srv/build", "server.conf"), nullptr);
    EXPECT_EQ(find_watched(files, "/srv/build", ".ninja_log"), nullptr);
}

TEST(ReloadDebounce, NothingIsDueWithoutAChange) {
    ReloadDebounce d;
    EXPECT_FALSE(d.take_due(t0 + 1h));
}

TEST(ReloadDebounce, AChangeIsDueOnceQuietForTheDebounceThenForgotten) {
    ReloadDebounce d;
    d.note(conf, Change::written, t0);
    EXPECT_FALSE(d.take_due(t0 + reload_debounce - 1ms));
    auto cause = d.take_due(t0 + reload_debounce);
    ASSERT_TRUE(cause);
    EXPECT_EQ(paths(*cause), std::vector<std::string>{"server.conf"});
    EXPECT_FALSE(cause->binary());
    EXPECT_FALSE(d.take_due(t0 + 1h));  // one reload per burst
}

TEST(ReloadDebounce, AnEditorsSaveInSeveralStepsIsOneReload) {
    // vim: rename to the backup, create, write, close, chmod; each step well within the debounce.
    ReloadDebounce d;
    Clock::time_point t = t0;
    for (Change step : {Change::removed, Change::writing, Change::writing, Change::written, Change::written}) {
        d.note(conf, step, t);
        EXPECT_FALSE(d.take_due(t + reload_debounce / 2));
        t += reload_debounce / 2;
    }
    auto cause = d.take_due(t - reload_debounce / 2 + reload_debounce);
    ASSERT_TRUE(cause);
    EXPECT_EQ(paths(*cause), std::vector<std::string>{"server.conf"});
}

TEST(ReloadDebounce, AFileStillOpenForWritingHoldsTheReloadUpToAGrace) {
    ReloadDebounce d;
    d.note(binary, Change::writing, t0);  // a linker that paused
    EXPECT_FALSE(d.take_due(t0 + reload_debounce));
    EXPECT_FALSE(d.take_due(t0 + reload_open_file_grace - 1ms));
    auto cause = d.take_due(t0 + reload_open_file_grace);  // kept open for good: reload anyway
    ASSERT_TRUE(cause);
    EXPECT_TRUE(cause->binary());

    d.note(binary, Change::writing, t0);
    d.note(binary, Change::written, t0 + 1s);  // closed: due a debounce later, not a grace later
    EXPECT_TRUE(d.take_due(t0 + 1s + reload_debounce));
}

TEST(ReloadDebounce, ARemovalAloneReloadsNothingButPostponesWhatIsPending) {
    ReloadDebounce d;
    d.note(conf, Change::removed, t0);
    EXPECT_FALSE(d.take_due(t0 + 1h));
    d.note(prompt, Change::written, t0 + 1h);
    d.note(conf, Change::removed, t0 + 1h + 200ms);
    EXPECT_FALSE(d.take_due(t0 + 1h + reload_debounce));
    auto cause = d.take_due(t0 + 1h + 200ms + reload_debounce);
    ASSERT_TRUE(cause);
    EXPECT_EQ(paths(*cause), std::vector<std::string>{"prompts/system.md"});
}

TEST(ReloadDebounce, SeveralFilesInOneBurstAreNamedInTheOrderSeen) {
    ReloadDebounce d;
    d.note(binary, Change::written, t0);
    d.note(conf, Change::written, t0 + 10ms);
    d.note(binary, Change::written, t0 + 20ms);
    auto cause = d.take_due(t0 + 20ms + reload_debounce);
    ASSERT_TRUE(cause);
    EXPECT_EQ(paths(*cause), (std::vector<std::string>{"/srv/build/agente-hibrido", "server.conf"}));
    EXPECT_TRUE(cause->binary());
    EXPECT_EQ(cause->describe(), "/srv/build/agente-hibrido, server.conf");
}

TEST(ReloadDebounce, LostEventsReloadForWhatMayHaveChanged) {
    ReloadDebounce d;
    d.note(conf, Change::overflow, t0);
    auto cause = d.take_due(t0 + reload_debounce);
    ASSERT_TRUE(cause);
    EXPECT_TRUE(cause->files.empty());
    EXPECT_EQ(cause->describe(), "(events lost: the kernel's queue overflowed)");
}

TEST(ReloadDebounce, IgnoresEventsThatChangeNoContents) {
    ReloadDebounce d;
    d.note(conf, Change::none, t0);
    EXPECT_FALSE(d.take_due(t0 + 1h));
}
