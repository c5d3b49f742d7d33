// Layout, directory and the fold of a dead worker's counters.
//
// Folding must never let a total go backwards nor count twice: the master adds a dead slot's
// counters into the retired cell and zeroes the slot, and a reader summing at that moment would
// see both or neither. So the fold is bracketed by a sequence counter (a seqlock over atomics: the
// master is its only writer): a reader that saw it odd, or changed across its sum, sums again. The
// master folds in microseconds, so a retry is rare, and a reader never waits on a worker.
#include "core/shared_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace agente::core {

namespace {

constexpr std::uint64_t directory_magic = 0x6167656e7465534dULL;  // "agenteSM"
constexpr std::uint32_t directory_version = 1;
constexpr std::size_t page = 4096;
// A sum that raced this many folds in a row gives up on consistency and returns what it read (the
// master would have to reap a worker every few microseconds).
constexpr int sum_attempts = 64;

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

void* map(int fd, std::size_t size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) throw_errno("shared memory: mmap");
    return p;
}

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

using Word = std::atomic<std::uint64_t>;

}  // namespace

struct SharedMemory::Directory {
    struct Entry {
        char name[SharedLayout::max_name + 1];
        std::uint64_t offset, size, align, stride;
        std::uint32_t cells;
        std::uint8_t per_worker, on_exit;
    };
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t slots;
    std::uint64_t total_bytes;
    std::uint32_t count;
    std::atomic<std::uint64_t> fold_sequence;   // odd while the master folds a slot
    Entry entries[max_regions];
    // Slots holding a live worker, as one bit each (summing skips the rest: their pages stay
    // untouched).
    std::atomic<std::uint64_t> occupied[(max_worker_slots * 4 + 63) / 64];
};

SharedMemory::Directory& SharedMemory::directory() const { return *static_cast<Directory*>(base_); }

SharedMemory SharedMemory::create(SharedLayout& layout) {
    static_assert(sizeof(Directory) <= 2 * page);
    if (int(layout.regions().size()) > max_regions) throw std::logic_error("shared memory: too many regions");
    if (layout.slots() > int(sizeof(Directory::occupied) * 8)) throw std::logic_error("shared memory: too many slots");
    SharedMemory m;
    m.slots_ = layout.slots();
    std::size_t offset = round_up(sizeof(Directory), page);
    for (auto& r : layout.regions()) {
        offset = round_up(offset, SharedLayout::cell_alignment);
        r.base = reinterpret_cast<std::byte*>(offset);   // relative until mapped
        offset += r.stride * std::size_t(r.cells);
    }
    m.size_ = round_up(offset, page);
    // Not close-on-exec: workers are exec'd and find it by number.
    m.fd_ = ::memfd_create("agente-hibrido-scoreboard", 0);
    if (m.fd_ < 0) throw_errno("shared memory: memfd_create");
    if (::ftruncate(m.fd_, off_t(m.size_)) != 0) throw_errno("shared memory: ftruncate");
    m.base_ = map(m.fd_, m.size_);   // a fresh memfd reads as zeros
    Directory& d = *new (m.base_) Directory();
    d.magic = directory_magic;
    d.version = directory_version;
    d.slots = std::uint32_t(m.slots_);
    d.total_bytes = m.size_;
    d.count = std::uint32_t(layout.regions().size());
    int i = 0;
    for (auto& r : layout.regions()) {
        auto& e = d.entries[i++];
        std::memcpy(e.name, r.name.data(), r.name.size());
        e.offset = reinterpret_cast<std::uintptr_t>(r.base);
        e.size = r.size;
        e.align = r.align;
        e.stride = r.stride;
        e.cells = std::uint32_t(r.cells);
        e.per_worker = r.per_worker;
        e.on_exit = std::uint8_t(r.on_exit);
        r.base = static_cast<std::byte*>(m.base_) + e.offset;
        for (int c = 0; c < r.cells; ++c) r.construct(r.base + std::size_t(c) * r.stride);
        // A per-worker cell is given back to its next worker by zeroing it: its constructed state
        // must be all zeros, or a reused slot would start from another state than a fresh one.
        if (r.per_worker)
            for (std::size_t b = 0; b < r.size; ++b)
                if (r.base[b] != std::byte{0})
                    throw std::logic_error("shared region \"" + r.name + "\": a per-worker cell must construct as zeros");
    }
    m.bind(layout);
    return m;
}

SharedMemory SharedMemory::attach(int fd, SharedLayout& layout) {
    SharedMemory m;
    m.fd_ = fd;
    void* head = map(fd, page);
    std::uint64_t magic = static_cast<Directory*>(head)->magic;
    std::uint64_t total = static_cast<Directory*>(head)->total_bytes;
    ::munmap(head, page);
    if (magic != directory_magic) throw std::runtime_error("shared memory: fd " + std::to_string(fd) + " is no scoreboard");
    m.size_ = total;
    m.base_ = map(fd, m.size_);
    Directory& d = m.directory();
    if (d.version != directory_version || int(d.slots) != layout.slots())
        throw std::runtime_error("shared memory: the master's scoreboard has another format; a new binary needs a new "
                                 "master (USR2), not a reload");
    m.slots_ = int(d.slots);
    for (auto& r : layout.regions()) {
        const Directory::Entry* found = nullptr;
        for (std::uint32_t i = 0; i < d.count && i < std::uint32_t(max_regions); ++i)
            if (r.name == d.entries[i].name) found = &d.entries[i];
        auto differs = [&](const char* what) {
            return std::runtime_error("shared region \"" + r.name + "\" " + what +
                                      " in the master's scoreboard: a binary whose shared layout changed needs a new "
                                      "master (USR2), not a reload");
        };
        if (!found) throw differs("is missing");
        if (found->size != r.size || found->align != r.align || found->stride != r.stride ||
            found->cells != std::uint32_t(r.cells) || bool(found->per_worker) != r.per_worker ||
            found->on_exit != std::uint8_t(r.on_exit))
            throw differs("has another size or kind");
        if (found->offset + found->stride * found->cells > m.size_) throw differs("lies outside");
        r.base = static_cast<std::byte*>(m.base_) + found->offset;
    }
    m.bind(layout);
    return m;
}

void SharedMemory::bind(SharedLayout& layout) {
    layout_ = &layout;
    for (auto& r : layout.regions()) r.memory = this;
}

SharedMemory::SharedMemory(SharedMemory&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)),
      slots_(o.slots_), layout_(std::exchange(o.layout_, nullptr)) {
    if (layout_) bind(*layout_);
}

SharedMemory& SharedMemory::operator=(SharedMemory&& o) noexcept {
    std::swap(fd_, o.fd_);
    std::swap(base_, o.base_);
    std::swap(size_, o.size_);
    std::swap(slots_, o.slots_);
    std::swap(layout_, o.layout_);
    if (layout_) bind(*layout_);
    if (o.layout_) o.bind(*o.layout_);
    return *this;
}

SharedMemory::~SharedMemory() {
    if (base_) ::munmap(base_, size_);
    if (fd_ >= 0) ::close(fd_);
}

void SharedMemory::occupy(int slot) {
    directory().occupied[slot / 64].fetch_or(std::uint64_t(1) << (slot % 64));
}

bool SharedMemory::occupied(int slot) const {
    return directory().occupied[slot / 64].load(std::memory_order_relaxed) & (std::uint64_t(1) << (slot % 64));
}

std::uint64_t SharedMemory::occupied_word(int word) const {
    return directory().occupied[word].load(std::memory_order_relaxed);
}

void SharedMemory::retire_slot(int slot) {
    if (slot < 0 || slot >= slots_) return;
    Directory& d = directory();
    d.fold_sequence.fetch_add(1, std::memory_order_relaxed);   // odd: a fold in progress
    std::atomic_thread_fence(std::memory_order_release);
    for (auto& r : layout_->regions()) {
        if (!r.per_worker) continue;
        std::byte* dead = r.base + std::size_t(slot) * r.stride;
        if (r.on_exit == OnExit::fold) {   // a CounterBlock: words of std::atomic<std::uint64_t>
            auto* from = reinterpret_cast<Word*>(dead);
            auto* retired = reinterpret_cast<Word*>(r.base + std::size_t(slots_) * r.stride);
            for (std::size_t w = 0; w < r.size / sizeof(Word); ++w)
                retired[w].fetch_add(from[w].load(std::memory_order_relaxed), std::memory_order_relaxed);
        }
        r.construct(dead);   // all zeros (checked in create), as a fresh slot's
    }
    d.occupied[slot / 64].fetch_and(~(std::uint64_t(1) << (slot % 64)), std::memory_order_relaxed);
    d.fold_sequence.fetch_add(1, std::memory_order_release);   // even again
}

void SharedMemory::sum(const detail::Region& r, Word* out, std::size_t words) const {
    const Directory& d = directory();
    for (int attempt = 0; attempt < sum_attempts; ++attempt) {
        std::uint64_t before = d.fold_sequence.load(std::memory_order_acquire);
        if (before % 2) {
            std::this_thread::yield();
            continue;
        }
        for (std::size_t w = 0; w < words; ++w) out[w].store(0, std::memory_order_relaxed);
        for (int c = 0; c < r.cells; ++c) {
            if (c < slots_ && !occupied(c)) continue;
            auto* cell = reinterpret_cast<const Word*>(r.base + std::size_t(c) * r.stride);
            for (std::size_t w = 0; w < words; ++w)
                out[w].store(out[w].load(std::memory_order_relaxed) + cell[w].load(std::memory_order_relaxed),
                             std::memory_order_relaxed);
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        if (d.fold_sequence.load(std::memory_order_relaxed) == before) return;
    }
}

}  // namespace agente::core

namespace agente {

struct PrivateMemory::Impl {
    core::SharedMemory memory;
};

// Every slot counts as in use: no master hands them out here, and PerWorker::for_each_in_use must
// still see whichever slot the caller picked.
PrivateMemory::PrivateMemory(SharedLayout& layout) : impl_(std::make_unique<Impl>(Impl{core::SharedMemory::create(layout)})) {
    for (int slot = 0; slot < layout.slots(); ++slot) impl_->memory.occupy(slot);
}

PrivateMemory::~PrivateMemory() = default;

}  // namespace agente

namespace agente::detail {

void sum_counters(const Region& region, std::atomic<std::uint64_t>* out, std::size_t words) {
    static_cast<const core::SharedMemory*>(region.memory)->sum(region, out, words);
}

std::uint64_t occupied_word(const Region& region, int word) {
    return static_cast<const core::SharedMemory*>(region.memory)->occupied_word(word);
}

}  // namespace agente::detail
