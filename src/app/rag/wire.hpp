// What travels between an HTTP worker and the RAG jobs of a dirty worker: a JSON head on one line,
// then, for uploads and file contents, the raw bytes (no base64: a file crosses the socket once, as
// it is). JSON text never holds a raw newline, so the first '\n' ends the head.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace agente::rag::wire {

std::string pack(const nlohmann::json& head, std::string_view tail = {});

struct Unpacked {
    nlohmann::json head;      // discarded (is_discarded()) when the head is not JSON
    std::string_view tail;    // a view into the packed text
};
Unpacked unpack(std::string_view packed);

// The jobs' kinds. Reads (and search) are idempotent: a call whose dirty worker died is retried.
inline constexpr const char* read_kind = "rag.read";
inline constexpr const char* search_kind = "rag.search";
inline constexpr const char* files_kind = "rag.files";
inline constexpr const char* stores_kind = "rag.stores";
inline constexpr const char* store_files_kind = "rag.store_files";
inline constexpr const char* batches_kind = "rag.batches";

// How long a search may wait for its dirty worker, queue included: it embeds its question upstream
// (the gateway's own retries and fallback included). For the search route and grounded chats alike.
inline constexpr std::chrono::milliseconds search_deadline{60'000};

}  // namespace agente::rag::wire
