// The vector stores as GET /status shows them. An HTTP worker's loop must not read the stores'
// database, so the dirty workers publish a summary into the shared memory whenever they change
// something (an ingest ended; a store, a file or a batch created, changed or deleted) and at boot,
// and the page reads that.
//
// A sequence lock over atomics: the version is odd while a writer fills the rows, and a reader that
// saw it change takes the rows again. Writers take turns by a compare-and-swap on their pid; a
// writer killed mid-way (a pid that no longer lives) is taken over, so the board never stays locked.
#pragma once

#include "app/rag/engine.hpp"

#include <agente/metrics.hpp>
#include <agente/shared.hpp>
#include <agente/status.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace agente::rag {

inline constexpr int board_rows = 32;           // the most recently created stores
inline constexpr int board_text_words = 8;      // 64 bytes: a store's name, cut past 63

struct BoardRow {
    std::atomic<std::uint64_t> name[board_text_words];
    std::atomic<std::uint64_t> id[board_text_words];
    std::atomic<std::uint64_t> files, in_progress, completed, failed, bytes, chunks;
};

struct StoreBoard {
    std::atomic<std::uint64_t> version;         // odd while written; 0: never published
    std::atomic<std::int32_t> writer;           // the publishing process's pid; 0: none
    std::atomic<std::uint64_t> rows;            // rows in use
    std::atomic<std::uint64_t> more;            // 1: more stores than rows
    BoardRow row[board_rows];
};

struct StoreSummary {
    std::string name, id;
    long files = 0, in_progress = 0, completed = 0, failed = 0, bytes = 0, chunks = 0;
};

struct BoardView {
    bool published = false;    // false: no dirty worker has published yet
    std::vector<StoreSummary> stores;
    bool more = false;
};

Shared<StoreBoard> declare_store_board(SharedLayout& layout);

// Writes `stores` (the first board_rows); false when another process is writing it now (its rows
// are as new as ours: both read the same database).
bool publish(StoreBoard& board, const std::vector<StoreSummary>& stores, bool more);
// The rows as last published; nothing while writers keep changing it under the reader (it is then
// asked again on the next refresh).
std::optional<BoardView> read_board(const StoreBoard& board);

// A dirty worker: reads the stores from its engine's database and publishes them. Never throws (a
// busy database leaves the previous rows).
void publish_stores(StoreBoard& board, Engine& engine);

void write_store_status(StatusPage& page, const StoreBoard& board);
// agente_rag_store_chunks{store,id}: the published stores' chunks (at most board_rows labels).
void write_store_metrics(MetricsText& out, const StoreBoard& board);

}  // namespace agente::rag
