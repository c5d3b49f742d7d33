#include "core/scoreboard.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace agente::core {

namespace {

constexpr std::size_t header_bytes = sizeof(std::uint64_t) * 2;  // app size, reserved
constexpr int all_slots = Scoreboard::max_slots + Scoreboard::dirty_slots;

std::size_t slots_bytes() { return sizeof(Slot) * all_slots + sizeof(DirtyKinds) * Scoreboard::dirty_slots; }

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

void* map(int fd, std::size_t size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) throw_errno("scoreboard: mmap");
    return p;
}

}  // namespace

std::int64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::chrono::milliseconds heartbeat_interval(int timeout_seconds) {
    return std::chrono::milliseconds(std::clamp<std::int64_t>(std::int64_t(timeout_seconds) * 250, 100, 1000));
}

Scoreboard Scoreboard::create(std::size_t app_bytes) {
    Scoreboard s;
    // Not close-on-exec: workers are exec'd and find it by number.
    s.fd_ = ::memfd_create("agente-hibrido-scoreboard", 0);
    if (s.fd_ < 0) throw_errno("scoreboard: memfd_create");
    s.size_ = header_bytes + slots_bytes() + app_bytes;
    if (::ftruncate(s.fd_, off_t(s.size_)) != 0) throw_errno("scoreboard: ftruncate");
    s.base_ = map(s.fd_, s.size_);  // a fresh memfd reads as zeros: every slot starts free
    static_cast<std::uint64_t*>(s.base_)[0] = app_bytes;
    return s;
}

Scoreboard Scoreboard::attach(int fd) {
    Scoreboard s;
    s.fd_ = fd;
    void* head = map(fd, header_bytes);
    std::size_t app_bytes = static_cast<std::uint64_t*>(head)[0];
    ::munmap(head, header_bytes);
    s.size_ = header_bytes + slots_bytes() + app_bytes;
    s.base_ = map(fd, s.size_);
    return s;
}

Scoreboard::Scoreboard(Scoreboard&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}

Scoreboard& Scoreboard::operator=(Scoreboard&& o) noexcept {
    std::swap(fd_, o.fd_);
    std::swap(base_, o.base_);
    std::swap(size_, o.size_);
    return *this;
}

Scoreboard::~Scoreboard() {
    if (base_) ::munmap(base_, size_);
    if (fd_ >= 0) ::close(fd_);
}

Slot* Scoreboard::slots() const {
    return reinterpret_cast<Slot*>(static_cast<char*>(base_) + header_bytes);
}

SharedArea Scoreboard::app_area() const {
    std::size_t app_bytes = static_cast<std::uint64_t*>(base_)[0];
    return {static_cast<char*>(base_) + header_bytes + slots_bytes(), app_bytes};
}

std::uint64_t kind_hash(std::string_view kind) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : kind) h = (h ^ c) * 1099511628211ull;
    return h ? h : 1;
}

bool Scoreboard::any_dirty_ready() const {
    for (int s = first_dirty_slot; s < first_dirty_slot + dirty_slots; ++s)   // claimed lowest first
        if (slots()[s].state.load(std::memory_order_relaxed) == std::uint32_t(WorkerState::ready)) return true;
    return false;
}

DirtyKinds& Scoreboard::kinds_of(int slot) const {
    auto* first = reinterpret_cast<DirtyKinds*>(slots() + all_slots);
    return first[slot - first_dirty_slot];
}

void Scoreboard::list_idempotent(int slot, const std::vector<std::uint64_t>& hashes) {
    DirtyKinds& k = kinds_of(slot);
    for (int i = 0; i < DirtyKinds::max_kinds; ++i)
        k.idempotent[i].store(i < int(hashes.size()) ? hashes[i] : 0, std::memory_order_relaxed);
}

bool Scoreboard::idempotent(std::uint64_t hash) const {
    for (int s = first_dirty_slot; s < first_dirty_slot + dirty_slots; ++s) {
        if (slots()[s].state.load(std::memory_order_relaxed) == std::uint32_t(WorkerState::free)) continue;
        const DirtyKinds& k = kinds_of(s);
        for (const auto& cell : k.idempotent) {
            std::uint64_t h = cell.load(std::memory_order_relaxed);
            if (h == 0) break;
            if (h == hash) return true;
        }
    }
    return false;
}

int Scoreboard::claim(std::int32_t pid) { return claim_in(0, max_slots, pid); }

int Scoreboard::claim_dirty(std::int32_t pid) {
    int i = claim_in(first_dirty_slot, first_dirty_slot + dirty_slots, pid);
    if (i >= 0) list_idempotent(i, {});
    return i;
}

int Scoreboard::claim_in(int first, int end, std::int32_t pid) {
    for (int i = first; i < end; ++i) {
        Slot& s = slot(i);
        if (s.state.load() != std::uint32_t(WorkerState::free)) continue;
        s.pid = pid;
        s.requests = 0;
        s.connections = 0;
        s.retire = 0;
        s.heartbeat_ns = monotonic_ns();
        s.state = std::uint32_t(WorkerState::booting);
        return i;
    }
    return -1;
}

std::uint32_t Scoreboard::fewest_elsewhere(int my_slot, std::int64_t alive_since_ns) const {
    std::uint32_t fewest = UINT32_MAX;
    for (int i = 0; i < max_slots; ++i) {
        const Slot& s = slots()[i];
        if (i == my_slot || s.state.load(std::memory_order_relaxed) != std::uint32_t(WorkerState::ready)) continue;
        if (s.heartbeat_ns.load(std::memory_order_relaxed) < alive_since_ns) continue;  // stuck: no help
        fewest = std::min(fewest, s.connections.load(std::memory_order_relaxed));
    }
    return fewest;
}

bool Scoreboard::fewer_elsewhere(int my_slot, std::uint32_t mine, std::int64_t alive_since_ns) const {
    std::uint64_t fewest = fewest_elsewhere(my_slot, alive_since_ns);  // 64 bits: none is UINT32_MAX
    return 2 * fewest + 2 < mine;
}

bool Scoreboard::room_elsewhere(int my_slot, std::uint32_t limit, std::int64_t alive_since_ns) const {
    return fewest_elsewhere(my_slot, alive_since_ns) < limit;
}

void Scoreboard::release(int i) {
    slot(i).pid = 0;
    slot(i).state = std::uint32_t(WorkerState::free);
}

}  // namespace agente::core
