// --reload's decisions, as functions of what inotify said and the time (no syscalls, no clock of
// their own; tests/unit/reload_plan_test.cpp drives them): which files are watched, which event on
// which name matters, and when a burst of changes has settled enough to reload. reload_watcher.cpp
// reads inotify and feeds these; master.cpp asks `take_due` once per cycle.
//
// Files are watched through their directories, not themselves: an editor that saves by writing a
// temporary file and renaming it over the old one (vim, VS Code, `sed -i`, a linker) replaces the
// inode, which a watch on the file itself would lose after the first save.
#pragma once

#include "core/arbiter.hpp"

#include <agente/config.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agente::core {

// Quiet time after the last change before reloading: an editor saves in several steps (a backup
// rename, a create, writes, a close, a chmod), a linker in many writes; one reload follows them all.
inline constexpr Clock::duration reload_debounce = std::chrono::milliseconds{300};
// A watched file opened for writing and not closed yet holds the reload back this long after its
// last change (a linker pausing between sections), then the reload goes ahead anyway (a file kept
// open by some process for good must not disable --reload).
inline constexpr Clock::duration reload_open_file_grace = std::chrono::seconds{5};

struct WatchedFile {
    std::string path;        // as the log names it: the binary, the config file, an extra file
    std::string directory;   // what inotify watches
    std::string name;        // the entry in it
    bool binary = false;     // the server's own executable: new workers will run it

    bool operator==(const WatchedFile&) const = default;
};

// The files --reload watches for `config` (none when it is off): the binary `exe`, the config file
// when there is one, and reload_extra_files; relative paths are taken from `cwd`. Each once.
std::vector<WatchedFile> reload_watch_list(const Config& config, const std::string& exe, const std::string& cwd);

// "/a/b/c" → ("/a/b", "c"); "c" → (cwd, "c"); "./x/../y" is kept lexically normal ("/cwd/y").
WatchedFile watched_file(const std::string& path, const std::string& cwd, bool binary = false);

// What an inotify event (its mask) on a watched name means.
enum class Change {
    none,        // nothing to do with the contents (IN_OPEN, IN_ACCESS...)
    writing,     // created or modified: more is probably coming, and a close will tell
    written,     // closed after writing, renamed into place, or its mode/times changed (touch, chmod)
    removed,     // deleted or renamed away: often an editor's first step; alone it reloads nothing
    overflow,    // the kernel's queue overflowed: events were lost, so assume anything changed
};
Change classify_event(std::uint32_t mask);

// The watched file an event in `directory` about `name` concerns; nullptr for any other name.
const WatchedFile* find_watched(const std::vector<WatchedFile>& files, std::string_view directory,
                                std::string_view name);

// Why a reload is due: the files that changed, in the order first seen.
struct ReloadCause {
    std::vector<WatchedFile> files;
    bool lost_events = false;   // an overflow: the files are not known
    bool binary() const;
    std::string describe() const;   // "server.conf, /x/agente-hibrido" or "(events lost)"
};

// Collects changes and says when they have settled.
class ReloadDebounce {
public:
    void note(const WatchedFile& file, Change change, Clock::time_point now);
    void note_overflow(Clock::time_point now);
    // The changes to reload for, once reload_debounce has passed since the last one (and no changed
    // file is still open for writing, up to reload_open_file_grace); then it starts over. Removals
    // alone are dropped: a file deleted and not written again is no reason to reload.
    std::optional<ReloadCause> take_due(Clock::time_point now);

private:
    struct Pending {
        WatchedFile file;
        bool open = false;   // IN_CREATE / IN_MODIFY seen since its last close
    };
    std::vector<Pending> pending_;
    bool lost_events_ = false;
    std::optional<Clock::time_point> last_change_;
};

}  // namespace agente::core
