#include "app/rag/store_board.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <signal.h>
#include <unistd.h>

namespace agente::rag {

namespace {

// A reader retries this often while writers keep the version moving; publishing takes microseconds.
constexpr int read_attempts = 16;

void put_text(std::atomic<std::uint64_t> (&words)[board_text_words], const std::string& text) {
    char bytes[board_text_words * 8] = {};
    std::memcpy(bytes, text.data(), std::min(text.size(), sizeof bytes - 1));
    for (int i = 0; i < board_text_words; ++i) {
        std::uint64_t w;
        std::memcpy(&w, bytes + i * 8, 8);
        words[i].store(w, std::memory_order_relaxed);
    }
}

std::string get_text(const std::atomic<std::uint64_t> (&words)[board_text_words]) {
    char bytes[board_text_words * 8 + 1] = {};
    for (int i = 0; i < board_text_words; ++i) {
        std::uint64_t w = words[i].load(std::memory_order_relaxed);
        std::memcpy(bytes + i * 8, &w, 8);
    }
    return std::string(bytes);
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// The board for this process, or false when a live one has it.
bool take(StoreBoard& b) {
    std::int32_t me = std::int32_t(::getpid());
    std::int32_t holder = 0;
    if (b.writer.compare_exchange_strong(holder, me)) return true;
    if (holder == me || alive(holder)) return false;
    return b.writer.compare_exchange_strong(holder, me);   // its writer died mid-way
}

}  // namespace

Shared<StoreBoard> declare_store_board(SharedLayout& layout) { return layout.declare<StoreBoard>("rag.store_board"); }

bool publish(StoreBoard& b, const std::vector<StoreSummary>& stores, bool more) {
    if (!take(b)) return false;
    // Odd (also when a dead writer left it odd), then the rows, then even again.
    std::uint64_t odd = b.version.load(std::memory_order_relaxed) | 1;
    b.version.store(odd, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    std::size_t n = std::min<std::size_t>(stores.size(), board_rows);
    for (std::size_t i = 0; i < n; ++i) {
        BoardRow& r = b.row[i];
        const StoreSummary& s = stores[i];
        put_text(r.name, s.name);
        put_text(r.id, s.id);
        r.files.store(std::uint64_t(s.files), std::memory_order_relaxed);
        r.in_progress.store(std::uint64_t(s.in_progress), std::memory_order_relaxed);
        r.completed.store(std::uint64_t(s.completed), std::memory_order_relaxed);
        r.failed.store(std::uint64_t(s.failed), std::memory_order_relaxed);
        r.bytes.store(std::uint64_t(s.bytes), std::memory_order_relaxed);
        r.chunks.store(std::uint64_t(s.chunks), std::memory_order_relaxed);
    }
    b.rows.store(n, std::memory_order_relaxed);
    b.more.store(more || stores.size() > n, std::memory_order_relaxed);
    b.version.store(odd + 1, std::memory_order_release);
    b.writer.store(0, std::memory_order_release);
    return true;
}

std::optional<BoardView> read_board(const StoreBoard& b) {
    for (int attempt = 0; attempt < read_attempts; ++attempt) {
        std::uint64_t before = b.version.load(std::memory_order_acquire);
        if (before & 1) continue;
        BoardView v;
        v.published = before != 0;
        std::size_t n = std::min<std::size_t>(b.rows.load(std::memory_order_relaxed), board_rows);
        for (std::size_t i = 0; i < n; ++i) {
            const BoardRow& r = b.row[i];
            StoreSummary s;
            s.name = get_text(r.name);
            s.id = get_text(r.id);
            s.files = long(r.files.load(std::memory_order_relaxed));
            s.in_progress = long(r.in_progress.load(std::memory_order_relaxed));
            s.completed = long(r.completed.load(std::memory_order_relaxed));
            s.failed = long(r.failed.load(std::memory_order_relaxed));
            s.bytes = long(r.bytes.load(std::memory_order_relaxed));
            s.chunks = long(r.chunks.load(std::memory_order_relaxed));
            v.stores.push_back(std::move(s));
        }
        v.more = b.more.load(std::memory_order_relaxed) != 0;
        std::atomic_thread_fence(std::memory_order_acquire);
        if (b.version.load(std::memory_order_relaxed) == before) return v;
    }
    return std::nullopt;
}

void publish_stores(StoreBoard& board, Engine& engine) {
    try {
        ListQuery newest;
        newest.limit = board_rows;
        Page<StoreRecord> page;
        {
            Engine::Lease db = engine.db();
            page = db->stores(newest);
        }
        std::vector<StoreSummary> rows;
        for (const auto& s : page.items)
            rows.push_back({s.name, s.id, s.counts.total, s.counts.in_progress, s.counts.completed, s.counts.failed,
                            s.usage_bytes, s.chunks});
        publish(board, rows, page.has_more);
    } catch (const std::exception& e) {
        spdlog::debug("rag: the stores for /status were not published: {}", e.what());
    }
}

void write_store_status(StatusPage& page, const StoreBoard& board) {
    page.section("RAG stores");
    std::optional<BoardView> v = read_board(board);
    if (!v) return page.note("Being updated; shown on the next refresh.");
    if (!v->published) return page.note("No dirty worker has published its stores yet.");
    if (v->stores.empty()) return page.note("No vector store.");
    page.table({"name", "id", "files", "in progress", "completed", "failed", "status", "chunks", "size (bytes)"});
    for (const auto& s : v->stores) {
        std::string status = "completed";
        if (s.in_progress) status = "in_progress";
        page.row({s.name, s.id, std::to_string(s.files), std::to_string(s.in_progress), std::to_string(s.completed),
                  std::to_string(s.failed), status, std::to_string(s.chunks), std::to_string(s.bytes)});
    }
    if (v->more)
        page.note("The " + std::to_string(board_rows) + " most recent stores; GET /v1/vector_stores lists them all.");
}

void write_store_metrics(MetricsText& out, const StoreBoard& board) {
    std::optional<BoardView> v = read_board(board);
    if (!v || !v->published) return;   // being written: the next scrape has it
    out.family("agente_rag_store_chunks", "gauge",
               "Chunks indexed per vector store, by its name and id (the " + std::to_string(board_rows) +
                   " most recently created stores, as /status shows them).");
    // By id too: names need not be unique, and a label set must be.
    for (const auto& s : v->stores)
        out.sample("agente_rag_store_chunks", {{"store", s.name}, {"id", s.id}}, std::int64_t(s.chunks));
}

}  // namespace agente::rag
