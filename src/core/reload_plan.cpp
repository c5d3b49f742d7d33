#include "core/reload_plan.hpp"

#include <sys/inotify.h>

#include <algorithm>
#include <filesystem>

namespace agente::core {

WatchedFile watched_file(const std::string& path, const std::string& cwd, bool binary) {
    std::filesystem::path p(path);
    if (p.is_relative()) p = std::filesystem::path(cwd) / p;
    p = p.lexically_normal();
    return {path, p.parent_path().string(), p.filename().string(), binary};
}

std::vector<WatchedFile> reload_watch_list(const Config& config, const std::string& exe, const std::string& cwd) {
    std::vector<WatchedFile> files;
    if (!config.reload) return files;
    auto add = [&](const std::string& path, bool binary) {
        WatchedFile f = watched_file(path, cwd, binary);
        if (!f.name.empty() && !find_watched(files, f.directory, f.name)) files.push_back(std::move(f));
    };
    add(exe, true);
    if (!config.config_path.empty()) add(config.config_path, false);
    for (const auto& extra : config.reload_extra_files) add(extra, false);
    return files;
}

Change classify_event(std::uint32_t mask) {
    if (mask & IN_Q_OVERFLOW) return Change::overflow;
    if (mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB)) return Change::written;
    if (mask & (IN_CREATE | IN_MODIFY)) return Change::writing;
    if (mask & (IN_DELETE | IN_MOVED_FROM)) return Change::removed;
    return Change::none;
}

const WatchedFile* find_watched(const std::vector<WatchedFile>& files, std::string_view directory,
                                std::string_view name) {
    for (const auto& f : files)
        if (f.directory == directory && f.name == name) return &f;
    return nullptr;
}

bool ReloadCause::binary() const {
    return std::any_of(files.begin(), files.end(), [](const WatchedFile& f) { return f.binary; });
}

std::string ReloadCause::describe() const {
    std::string out;
    for (const auto& f : files) out += (out.empty() ? "" : ", ") + f.path;
    if (lost_events) out += out.empty() ? "(events lost: the kernel's queue overflowed)" : " (and events lost)";
    return out;
}

void ReloadDebounce::note(const WatchedFile& file, Change change, Clock::time_point now) {
    if (change == Change::none) return;
    if (change == Change::overflow) return note_overflow(now);
    last_change_ = now;
    if (change == Change::removed) return;  // postpones what is pending; a reload needs the file back
    // By the name the log uses: a symlink's target is the same file as the link (reload_watcher.cpp).
    auto same = [&](const Pending& p) { return p.file.path == file.path; };
    auto it = std::find_if(pending_.begin(), pending_.end(), same);
    if (it == pending_.end()) it = pending_.insert(pending_.end(), Pending{file, false});
    it->open = change == Change::writing;
}

void ReloadDebounce::note_overflow(Clock::time_point now) {
    last_change_ = now;
    lost_events_ = true;
}

std::optional<ReloadCause> ReloadDebounce::take_due(Clock::time_point now) {
    if (!last_change_ || now - *last_change_ < reload_debounce) return std::nullopt;
    bool still_open = std::any_of(pending_.begin(), pending_.end(), [](const Pending& p) { return p.open; });
    if (still_open && now - *last_change_ < reload_open_file_grace) return std::nullopt;
    std::optional<ReloadCause> cause;
    if (!pending_.empty() || lost_events_) {
        cause.emplace();
        for (auto& p : pending_) cause->files.push_back(std::move(p.file));
        cause->lost_events = lost_events_;
    }
    pending_.clear();
    lost_events_ = false;
    last_change_.reset();
    return cause;
}

}  // namespace agente::core
