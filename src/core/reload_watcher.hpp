// --reload's eyes: one inotify descriptor on the master's own event loop, watching the directories
// of the files reload_plan.hpp lists, feeding what it reads to a ReloadDebounce. Reading never
// blocks the loop (a non-blocking descriptor, read when asio says it is readable).
#pragma once

#include "core/reload_plan.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace agente::core {

class ReloadWatcher {
public:
    // Watches the directories of `files`. Throws std::system_error when inotify cannot be had; a
    // directory that cannot be watched is logged and skipped (its files then never reload).
    ReloadWatcher(boost::asio::io_context& ioc, std::vector<WatchedFile> files);

    const std::vector<WatchedFile>& files() const { return files_; }

    // The changes to reload for, once they settled (ReloadDebounce::take_due).
    std::optional<ReloadCause> take_due(Clock::time_point now) { return debounce_.take_due(now); }

private:
    void wait_for_events();
    void read_events();

    std::vector<WatchedFile> files_;     // as listed (reload_watch_list)
    std::vector<WatchedFile> watched_;   // and where their symlinks point
    boost::asio::posix::stream_descriptor inotify_;
    std::map<int, std::string> directories_;   // watch descriptor → directory
    ReloadDebounce debounce_;
};

}  // namespace agente::core
