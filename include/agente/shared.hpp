// Shared memory as named, typed regions. The core and the app declare, before start-up, what every
// process must see: whole-server cells (one T) and per-worker cells (one T per worker slot). The
// master lays the regions out in its scoreboard memfd, aligned, and constructs them; every worker
// (exec'd, so it declares the same regions again) finds them there by name, its layout checked
// against the master's. When a worker dies the master zeroes its per-worker cells itself, after
// folding counters into the region's "retired" cell so that totals never go backwards.
//
// Only lock-free atomics belong in a region: a worker may die at any instruction and the others go
// on with whatever it left.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace agente {

// Worker processes, one scoreboard slot each: HTTP workers (the bound of the `workers` setting) in
// the first slots, dirty workers (the bound of `dirty_workers`) after them. A per-worker region has
// a cell for every slot of both pools; a dirty worker's cells count its jobs.
inline constexpr int max_http_slots = 256;
inline constexpr int max_dirty_slots = 128;
inline constexpr int max_worker_slots = max_http_slots + max_dirty_slots;

// What the master does with a dead worker's per-worker cells before the slot is reused.
enum class OnExit : std::uint8_t {
    zero,   // forget them (what the worker held: streams open, requests in flight)
    fold,   // add them into the retired cell, then zero them (what it did: requests served)
};

// A type for OnExit::fold: nothing but std::atomic<std::uint64_t> counters (in arrays and nested
// structs of them), so that the core can add one cell into another word by word. Say so with
// `static constexpr bool counters_only = true;` in the type.
template <class T>
concept CounterBlock = T::counters_only && sizeof(T) % sizeof(std::atomic<std::uint64_t>) == 0 &&
                       alignof(T) == alignof(std::atomic<std::uint64_t>);

// A counter only its own worker writes: a plain load and store, no locked read-modify-write (the
// master folds a dead worker's cells; scrapers only read).
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

namespace detail {

// One declared region, as the core lays it out. Handles point at it; `base` is set once mapped.
struct Region {
    std::string name;
    std::size_t size = 0;        // sizeof(T)
    std::size_t align = 0;       // alignof(T)
    std::size_t stride = 0;      // bytes from one cell to the next
    bool per_worker = false;
    OnExit on_exit = OnExit::zero;
    void (*construct)(void*) = nullptr;
    std::byte* base = nullptr;   // the first cell, once the memory is mapped
    int cells = 1;               // per-worker: one per slot, then the retired cell
    const void* memory = nullptr;  // the core's SharedMemory that maps it
};

// The sum of a counter region over the retired cell and every slot in use, word by word, read
// consistently with the master's folding (core/shared_memory.cpp).
void sum_counters(const Region& region, std::atomic<std::uint64_t>* out, std::size_t words);
// Bits 64 x word .. 64 x word + 63 of the slots in use (a relaxed read of the master's bitmap).
std::uint64_t occupied_word(const Region& region, int word);

[[noreturn]] inline void unmapped(const Region& r) {
    throw std::logic_error("shared region \"" + r.name + "\" used before the shared memory was mapped");
}

}  // namespace detail

// A whole-server region: one T every process sees.
template <class T>
class Shared {
public:
    Shared() = default;
    explicit Shared(const detail::Region* region) : region_(region) {}
    bool mapped() const { return region_ && region_->base; }
    T& operator*() const { return *get(); }
    T* operator->() const { return get(); }
    T* get() const {
        if (!mapped()) detail::unmapped(*region_);
        return reinterpret_cast<T*>(region_->base);
    }

private:
    const detail::Region* region_ = nullptr;
};

// A per-worker region: one T per worker slot, and for OnExit::fold a retired cell that holds what
// dead workers counted.
template <class T>
class PerWorker {
public:
    PerWorker() = default;
    explicit PerWorker(const detail::Region* region) : region_(region) {}
    bool mapped() const { return region_ && region_->base; }
    int slots() const { return region_->cells - 1; }
    T& of(int slot) const {
        if (!mapped()) detail::unmapped(*region_);
        return *reinterpret_cast<T*>(region_->base + std::size_t(slot) * region_->stride);
    }
    const T& retired() const { return of(slots()); }

    // Calls f(cell) for every slot in use, not every slot there could be: a sum over all of them
    // read 384 cells (one cache line each) per call. The cells skipped hold nothing: the master
    // marks a slot in use before its worker starts, and zeroes or folds its cells when it retires it.
    template <class F>
    void for_each_in_use(F&& f) const {
        if (!mapped()) detail::unmapped(*region_);
        for (int w = 0; w * 64 < slots(); ++w)
            for (std::uint64_t bits = detail::occupied_word(*region_, w); bits != 0; bits &= bits - 1)
                f(of(w * 64 + std::countr_zero(bits)));
    }

    // Counters summed over the whole server: the retired cell and every slot in use, into a private
    // T. O(slots in use x size); never waits on a worker.
    std::unique_ptr<T> total() const
        requires CounterBlock<T>
    {
        if (!mapped()) detail::unmapped(*region_);
        auto out = std::make_unique<T>();
        detail::sum_counters(*region_, reinterpret_cast<std::atomic<std::uint64_t>*>(out.get()),
                             sizeof(T) / sizeof(std::atomic<std::uint64_t>));
        return out;
    }

private:
    const detail::Region* region_ = nullptr;
};

// What the processes declare before the shared memory exists. The same declarations, in the same
// binary, in the master and in every worker: a worker looks each region up by name, and refuses to
// boot when its idea of one (size, alignment, kind) differs from the master's (a new binary whose
// layout changed needs a new master, USR2, not a reload).
class SharedLayout {
public:
    explicit SharedLayout(int slots = max_worker_slots) : slots_(slots) {}
    SharedLayout(const SharedLayout&) = delete;
    SharedLayout& operator=(const SharedLayout&) = delete;

    template <class T>
    Shared<T> declare(std::string_view name) {
        check<T>();
        return Shared<T>(&add(name, sizeof(T), alignof(T), false, OnExit::zero, construct<T>));
    }

    template <class T>
    PerWorker<T> declare_per_worker(std::string_view name, OnExit on_exit = OnExit::zero) {
        check<T>();
        if constexpr (CounterBlock<T>) {
        } else if (on_exit == OnExit::fold) {
            throw std::logic_error("shared region \"" + std::string(name) + "\": OnExit::fold needs a CounterBlock");
        }
        return PerWorker<T>(&add(name, sizeof(T), alignof(T), true, on_exit, construct<T>));
    }

    int slots() const { return slots_; }
    const std::deque<detail::Region>& regions() const { return regions_; }
    std::deque<detail::Region>& regions() { return regions_; }

    // A region's cells start on their own cache line, so that workers writing neighbouring cells
    // never share one.
    static constexpr std::size_t cell_alignment = 64;
    static constexpr std::size_t max_name = 63;

private:
    template <class T>
    static void check() {
        static_assert(std::is_standard_layout_v<T> && std::is_trivially_destructible_v<T>,
                      "a shared region holds plain structs of lock-free atomics");
        static_assert(alignof(T) <= cell_alignment);
    }

    template <class T>
    static void construct(void* p) {
        new (p) T();
    }

    detail::Region& add(std::string_view name, std::size_t size, std::size_t align, bool per_worker, OnExit on_exit,
                        void (*construct)(void*)) {
        if (name.empty() || name.size() > max_name)
            throw std::logic_error("shared region name \"" + std::string(name) + "\": 1 to 63 characters");
        for (const auto& r : regions_)
            if (r.name == name) throw std::logic_error("shared region \"" + std::string(name) + "\" declared twice");
        detail::Region& r = regions_.emplace_back();
        r.name = std::string(name);
        r.size = size;
        r.align = align;
        r.stride = (size + cell_alignment - 1) / cell_alignment * cell_alignment;
        r.per_worker = per_worker;
        r.on_exit = on_exit;
        r.construct = construct;
        r.cells = per_worker ? slots_ + 1 : 1;
        return r;
    }

    int slots_;
    std::deque<detail::Region> regions_;   // a deque: handles keep pointers into it
};

// Memory of this process alone behind a layout's regions, laid out and constructed as the master
// does: for code that runs the app's pieces outside the server (the CLI, tests). The layout's handles
// point into it for as long as it lives.
class PrivateMemory {
public:
    explicit PrivateMemory(SharedLayout& layout);
    ~PrivateMemory();
    PrivateMemory(const PrivateMemory&) = delete;
    PrivateMemory& operator=(const PrivateMemory&) = delete;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Names any process may add to without a lock, for label values that only workers know (the routes
// they registered, the upstreams they call): an entry is claimed by a compare-and-swap, written,
// then published. Two workers adding the same name at once may both get an entry; readers merge
// entries by name. A worker that dies while writing leaves an entry that is never published.
template <int N, std::size_t Len = 63>
struct NameTable {
    static constexpr int capacity = N;
    enum : std::uint32_t { free_entry = 0, writing = 1, ready = 2 };
    struct Entry {
        std::atomic<std::uint32_t> state;
        char name[Len + 1];
    };
    Entry entries[N];

    // The index of `name` (cut to Len bytes), added when new; -1 when the table is full.
    int intern(std::string_view name) {
        name = name.substr(0, Len);
        if (int i = find(name); i >= 0) return i;
        for (int i = 0; i < N; ++i) {
            std::uint32_t expected = free_entry;
            if (!entries[i].state.compare_exchange_strong(expected, writing)) continue;
            std::memset(entries[i].name, 0, sizeof entries[i].name);
            std::memcpy(entries[i].name, name.data(), name.size());
            entries[i].state.store(ready, std::memory_order_release);
            int first = find(name);   // someone else's entry published meanwhile: use the first
            return first >= 0 ? first : i;
        }
        return -1;
    }

    int find(std::string_view name) const {
        name = name.substr(0, Len);
        for (int i = 0; i < N; ++i)
            if (entries[i].state.load(std::memory_order_acquire) == ready && name == entries[i].name) return i;
        return -1;
    }

    // "" unless the entry is published.
    std::string_view name(int i) const {
        if (i < 0 || i >= N || entries[i].state.load(std::memory_order_acquire) != ready) return {};
        return entries[i].name;
    }
};

}  // namespace agente
