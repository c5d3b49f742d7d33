// A worker's start-up leaves page-table entries behind that its serving never uses again (issue 17).
// Exec'd, it runs the config reader, the app's set-up and every route's registration, and
// the kernel maps each touched page of a file with its neighbours (fault-around, 64 KiB at a time):
// most of the binary's code ends up mapped, twice what serving touches (docs/benchmarks.md). Those
// pages stay in the page cache, shared with the master; the worker's own entries for them are what
// its PSS counts. Dropping
// them once it is ready leaves the worker mapping what it serves with; whatever it touches later is
// mapped again from the page cache (a minor fault, no I/O).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace agente::core {

struct PageRange {
    std::uintptr_t begin = 0, end = 0;
    bool operator==(const PageRange&) const = default;
};

// The mappings of a /proc/PID/smaps text whose entries can be dropped without losing a byte: those
// of a file (the binary, its libraries) that are read-only and hold no anonymous page. A read-only
// mapping can still hold copy-on-write pages (relocated data made read-only after the loader wrote
// it, a debugger's breakpoint, a uprobe): those would be lost, so such a mapping is kept whole.
// Writable, anonymous ([heap], [stack]) and special ([vdso]) mappings are kept.
std::vector<PageRange> droppable_mappings(std::string_view smaps);

// The same, fed one line at a time (without its '\n').
class MappingFilter {
public:
    void line(std::string_view text);
    std::vector<PageRange> finish();

    struct Mapping {
        PageRange range;
        bool read_only_file = false;  // a file's mapping without 'w': never written through it
        bool clean = false;           // its "Anonymous:" read 0 kB: no copy-on-write page to lose
    };

private:
    void finish_mapping();
    Mapping current_;
    bool open_ = false;
    std::vector<PageRange> out_;
};

// In a worker once it is ready: MADV_DONTNEED over droppable_mappings(/proc/self/smaps). Returns
// the bytes of address space dropped (0 when /proc cannot be read: then only the gain is lost).
std::size_t drop_startup_pages();

}  // namespace agente::core
