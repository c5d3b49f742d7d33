#include "app/cluster/link_board.hpp"

namespace agente::cluster {

LinkRegions declare_link_regions(SharedLayout& layout) {
    return {layout.declare_per_worker<LinkCell>("cluster.links"), layout.declare<LinkBoard>("cluster.board")};
}

std::vector<WorkerLink> worker_links(const PerWorker<LinkCell>& cells) {
    std::vector<WorkerLink> out;
    for (int i = 0; i < cells.slots(); ++i) {
        const LinkCell& c = cells.of(i);
        if (c.linked.load(std::memory_order_acquire) != 1) continue;
        out.push_back({RedisState(c.state.load()), c.streams_active.load(), c.hosts.load(), c.read_at_ms.load()});
    }
    return out;
}

void write_reason(LinkCell& cell, std::string_view reason) {
    constexpr std::size_t room = sizeof cell.reason / sizeof cell.reason[0] - 1;
    reason = reason.substr(0, room);
    cell.reason_seq.fetch_add(1, std::memory_order_acq_rel);   // odd: being written
    for (std::size_t i = 0; i < reason.size(); ++i) cell.reason[i].store(reason[i], std::memory_order_relaxed);
    cell.reason[reason.size()].store(0, std::memory_order_relaxed);
    cell.reason_seq.fetch_add(1, std::memory_order_release);
}

std::string read_reason(const LinkCell& cell) {
    std::uint32_t before = cell.reason_seq.load(std::memory_order_acquire);
    if (before % 2 != 0) return "";
    std::string out;
    for (const auto& c : cell.reason) {
        char ch = c.load(std::memory_order_relaxed);
        if (!ch) break;
        out.push_back(ch);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (cell.reason_seq.load(std::memory_order_relaxed) != before) return "";
    return out;
}

std::string down_reason(const PerWorker<LinkCell>& cells) {
    for (int i = 0; i < cells.slots(); ++i) {
        const LinkCell& c = cells.of(i);
        if (c.linked.load(std::memory_order_acquire) != 1 || RedisState(c.state.load()) != RedisState::down) continue;
        if (std::string reason = read_reason(c); !reason.empty()) return reason;
    }
    return "";
}

}  // namespace agente::cluster
