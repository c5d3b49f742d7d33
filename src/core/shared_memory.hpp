// The memory behind a SharedLayout: one memfd the master creates and every worker maps. Its first
// page is a directory (each region's name, size, alignment, kind and offset), so that a worker finds
// its regions by name and a layout that differs from the master's is refused, not misread.
#pragma once

#include <agente/shared.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace agente::core {

class SharedMemory {
public:
    // Master: lays out every region of `layout` (aligned), creates a zeroed memfd, constructs the
    // cells and writes the directory. The layout's handles then point into the mapping.
    static SharedMemory create(SharedLayout& layout);
    // Worker: maps the memfd behind `fd` and points each region of `layout` at the master's region of
    // the same name; throws std::runtime_error naming the first that is missing or differs.
    static SharedMemory attach(int fd, SharedLayout& layout);

    SharedMemory() = default;
    SharedMemory(SharedMemory&& other) noexcept;
    SharedMemory& operator=(SharedMemory&& other) noexcept;
    ~SharedMemory();

    int fd() const { return fd_; }
    std::size_t size() const { return size_; }

    // Master: `slot` holds a live worker now (its counters are summed from here on).
    void occupy(int slot);
    // Master, after a worker died: its counters folded into the retired cells and every per-worker
    // cell of the slot zeroed, as one step for readers (see sum_counters).
    void retire_slot(int slot);
    bool occupied(int slot) const;
    std::uint64_t occupied_word(int word) const;

    // For detail::sum_counters: the retired cell plus every occupied slot, read consistently with
    // retire_slot (a sequence counter: a sum that raced a fold is taken again).
    void sum(const detail::Region& region, std::atomic<std::uint64_t>* out, std::size_t words) const;

    // Regions in the directory, and the most of them: a fixed first page.
    static constexpr int max_regions = 48;

private:
    struct Directory;
    Directory& directory() const;
    void bind(SharedLayout& layout);

    int fd_ = -1;
    void* base_ = nullptr;
    std::size_t size_ = 0;
    int slots_ = 0;
    SharedLayout* layout_ = nullptr;
};

}  // namespace agente::core
