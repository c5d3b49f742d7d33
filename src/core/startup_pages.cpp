#include "core/startup_pages.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace agente::core {

namespace {

std::uintptr_t hex(std::string_view text) {
    std::uintptr_t v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v, 16);
    return v;
}

std::string_view skip_spaces(std::string_view s) {
    s.remove_prefix(std::min(s.find_first_not_of(' '), s.size()));
    return s;
}

// "55d0c8a2a000-55d0c8e0a000 r-xp 0002a000 08:01 1234    /path/to/file" (the path may hold spaces,
// and ends in " (deleted)" once the file was replaced: its pages are still the mapping's).
MappingFilter::Mapping parse_header(std::string_view line) {
    MappingFilter::Mapping m;
    auto dash = line.find('-'), space = line.find(' ');
    if (dash == std::string_view::npos || space == std::string_view::npos || dash > space) return m;
    m.range = {hex(line.substr(0, dash)), hex(line.substr(dash + 1, space - dash - 1))};
    std::string_view rest = line.substr(space + 1);
    std::string_view perms = rest.substr(0, rest.find(' '));
    for (int field = 0; field < 4 && !rest.empty(); ++field)  // perms, offset, device, inode
        rest = skip_spaces(rest.substr(std::min(rest.find(' '), rest.size())));
    bool file = rest.starts_with('/') && !rest.starts_with("/memfd:");
    m.read_only_file = file && perms.size() == 4 && perms[0] == 'r' && perms[1] != 'w';
    return m;
}

// Headers start with the address in lower-case hex; the fields under them with a capitalised name.
bool is_header(std::string_view line) {
    return !line.empty() && ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f'));
}

}  // namespace

void MappingFilter::line(std::string_view text) {
    if (is_header(text)) {
        finish_mapping();
        current_ = parse_header(text);
        open_ = true;
    } else if (open_ && text.starts_with("Anonymous:")) {
        current_.clean = skip_spaces(text.substr(10)).starts_with("0 ");
    }
}

std::vector<PageRange> MappingFilter::finish() {
    finish_mapping();
    return std::move(out_);
}

void MappingFilter::finish_mapping() {
    if (open_ && current_.read_only_file && current_.clean && current_.range.end > current_.range.begin)
        out_.push_back(current_.range);
    open_ = false;
}

std::vector<PageRange> droppable_mappings(std::string_view smaps) {
    MappingFilter filter;
    while (!smaps.empty()) {
        auto nl = smaps.find('\n');
        filter.line(smaps.substr(0, nl));
        smaps.remove_prefix(nl == std::string_view::npos ? smaps.size() : nl + 1);
    }
    return filter.finish();
}

std::size_t drop_startup_pages() {
    // Read through a buffer on the stack: the heap is what the worker keeps, and the whole text
    // (~100 KB) in it would leave its pages touched.
    int fd = ::open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    MappingFilter filter;
    char buf[8192];  // a line is at most a path (PATH_MAX, 4096) and ~75 bytes before it
    std::size_t held = 0;
    for (;;) {
        ssize_t n = ::read(fd, buf + held, sizeof buf - held);
        if (n <= 0) break;
        std::string_view text(buf, held + std::size_t(n));
        for (auto nl = text.find('\n'); nl != std::string_view::npos; nl = text.find('\n')) {
            filter.line(text.substr(0, nl));
            text.remove_prefix(nl + 1);
        }
        held = text.size();
        if (held == sizeof buf) held = 0;  // no line is this long: drop it rather than stall
        std::memmove(buf, text.data(), held);
    }
    ::close(fd);
    std::size_t dropped = 0;
    for (const PageRange& r : filter.finish())
        if (::madvise(reinterpret_cast<void*>(r.begin), r.end - r.begin, MADV_DONTNEED) == 0) dropped += r.end - r.begin;
    return dropped;
}

}  // namespace agente::core
