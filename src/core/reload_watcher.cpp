#include "core/reload_watcher.hpp"

#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace agente::core {

namespace {

// Every event that can mean new contents under a name, or the name going away; and the directory's
// own end (removed or renamed: its watch is gone, which is said once).
constexpr std::uint32_t watch_mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB | IN_CREATE | IN_MODIFY |
                                     IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

int open_inotify() {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
    return fd;
}

// A file reached through a symlink (server.conf linked from /etc into a checkout) is edited where the
// link points: that directory is watched too, under the same name for the log.
std::vector<WatchedFile> with_link_targets(const std::vector<WatchedFile>& files) {
    std::vector<WatchedFile> out = files;
    for (const auto& f : files) {
        std::error_code ec;
        auto target = std::filesystem::canonical(std::filesystem::path(f.directory) / f.name, ec);
        if (ec) continue;
        WatchedFile t{f.path, target.parent_path().string(), target.filename().string(), f.binary};
        if (!find_watched(out, t.directory, t.name)) out.push_back(std::move(t));
    }
    return out;
}

}  // namespace

ReloadWatcher::ReloadWatcher(boost::asio::io_context& ioc, std::vector<WatchedFile> files)
    : files_(std::move(files)), watched_(with_link_targets(files_)), inotify_(ioc, open_inotify()) {
    for (const auto& f : watched_) {
        int wd = ::inotify_add_watch(inotify_.native_handle(), f.directory.c_str(), watch_mask);
        if (wd < 0) {
            spdlog::error("reload: cannot watch {} for changes to {}: {}", f.directory, f.path, std::strerror(errno));
            continue;
        }
        directories_[wd] = f.directory;  // the same directory twice: the same wd
    }
    wait_for_events();
}

void ReloadWatcher::wait_for_events() {
    inotify_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
        if (ec) return;  // closed with the watcher: `this` is gone, touch nothing
        read_events();
        wait_for_events();
    });
}

void ReloadWatcher::read_events() {
    alignas(inotify_event) char buffer[16 * 1024];
    auto now = Clock::now();
    for (;;) {
        ssize_t n = ::read(inotify_.native_handle(), buffer, sizeof buffer);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EINTR) spdlog::error("reload: inotify: {}", std::strerror(errno));
            return;
        }
        for (ssize_t at = 0; at < n;) {
            const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
            at += ssize_t(sizeof(inotify_event) + event->len);
            if (event->mask & IN_Q_OVERFLOW) {
                debounce_.note_overflow(now);
                continue;
            }
            auto dir = directories_.find(event->wd);
            if (dir == directories_.end()) continue;
            if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
                if (event->mask & IN_IGNORED) {
                    spdlog::warn("reload: {} was removed or moved; its files are no longer watched", dir->second);
                    directories_.erase(dir);
                }
                continue;
            }
            std::string_view name = event->len ? std::string_view(event->name) : std::string_view();
            if (const WatchedFile* f = find_watched(watched_, dir->second, name))
                debounce_.note(*f, classify_event(event->mask), now);
        }
    }
}

}  // namespace agente::core
